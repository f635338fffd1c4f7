"""The pre-trade risk check: in process (the engine) and over gRPC (the servicer behind the platform's server)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import structlog
from risk_service.config import RiskConfig
from risk_service.engine import RiskEngine
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.clock import LiveClock
from trading_platform.decimals import to_proto
from trading_platform.rpc import RpcServer, Servicer, channel
from trading_platform.testing.identities import dev_identities

from tests.benchmarks.stats import latency_summary, write_results

CHECKS = 20_000
ORDER_CANCELED = oms_pb2.ORDER_STATUS_CANCELED


def request(index: int) -> risk_pb2.CheckOrderRequest:
    return risk_pb2.CheckOrderRequest(
        client_order_id=f"co-{index}",
        symbol="AAPL",
        side=common_pb2.ORDER_SIDE_BUY,
        quantity=to_proto("10"),
        reference_price=to_proto("100"),
    )


def engine() -> RiskEngine:
    """A ready gate (book rebuilt, the day's equity known) whose limits every check passes: the approval path."""
    clock = LiveClock()
    risk = RiskEngine(RiskConfig(max_orders_per_second=10**9, max_orders_per_day=10**9), clock)
    risk.mark_ready()
    risk.start_day(risk.trading_day(clock.now_ns()), Decimal("1000000"))
    risk.on_price("AAPL", Decimal("100"))
    return risk


def checked(risk: RiskEngine, item: risk_pb2.CheckOrderRequest) -> bool:
    """One check, then the order ends (as its cancel event would say), so the book stays the same size."""
    verdict = risk.check(item)
    risk.on_order_event(item.client_order_id, ORDER_CANCELED, Decimal(0), Decimal(0))
    return bool(verdict.approved)


class Gate(risk_pb2_grpc.RiskServiceServicer):
    def __init__(self) -> None:
        self.engine = engine()

    async def CheckOrder(self, request, context):
        verdict = self.engine.check(request)
        self.engine.on_order_event(request.client_order_id, ORDER_CANCELED, Decimal(0), Decimal(0))
        return risk_pb2.RiskDecision(
            client_order_id=request.client_order_id, approved=verdict.approved, reason_code=verdict.reason_code
        )


async def over_grpc() -> dict[str, object]:
    server = RpcServer(
        [Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, Gate(), "trading.risk.v1.RiskService")],
        log_calls=False,
    )
    await server.start()
    await server.set_serving(True)
    samples = []
    async with channel(server.address) as open_channel:  # as order-management, over mTLS
        stub = risk_pb2_grpc.RiskServiceStub(open_channel)
        for index in range(5_000):
            started = time.perf_counter_ns()
            await stub.CheckOrder(request(index))
            samples.append(time.perf_counter_ns() - started)
    await server.stop(0)
    return latency_summary(samples)


def over_grpc_with_identities() -> dict[str, object]:
    with dev_identities():
        return asyncio.run(over_grpc())


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    risk = engine()
    requests = [request(i) for i in range(CHECKS)]
    samples = []
    for item in requests:
        started = time.perf_counter_ns()
        approved = checked(risk, item)
        samples.append(time.perf_counter_ns() - started)
        if not approved:
            raise SystemExit(
                f"the benchmark's check was denied ({risk.check(item).reason_code}): it times the approval path"
            )
    write_results(
        "risk_check",
        {
            "in_process": latency_summary(samples),
            "over_grpc": over_grpc_with_identities(),
            "note": "gRPC: client and server in one process on loopback, without the bus "
            "publish of the decision that the service adds",
        },
    )


if __name__ == "__main__":
    main()
