"""A unary gRPC call through the platform's interceptor chain (mTLS, token verification, the access policy,
tracing, metrics, logging) on loopback, as a viewer with a token issued and verified the way the platform does.

`calls_against` measures the same call against a running service in another process (the trading-path benchmark's
floor of the gRPC hop: risk's GetTradingState while the stack trades)."""

from __future__ import annotations

import asyncio
import time

import structlog
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.identity import VIEWER
from trading_platform.rpc import ClientSecurity, RpcServer, Servicer, channel
from trading_platform.testing.identities import dev_identities

from tests.benchmarks.stats import latency_summary, write_results

CALLS = 5_000


class StateServicer(risk_pb2_grpc.RiskServiceServicer):
    async def GetTradingState(self, request, context):
        return risk_pb2.TradingStateResponse(state=risk_pb2.TRADING_STATE_ACTIVE)


async def run(log_calls: bool, client: ClientSecurity) -> dict[str, float]:
    server = RpcServer(
        [Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, StateServicer(), "trading.risk.v1.RiskService")],
        log_calls=log_calls,
    )
    await server.start()
    await server.set_serving(True)
    samples = []
    async with channel(server.address, security=client) as open_channel:
        stub = risk_pb2_grpc.RiskServiceStub(open_channel)
        for _ in range(200):
            await stub.GetTradingState(risk_pb2.GetTradingStateRequest())
        for _ in range(CALLS):
            started = time.perf_counter_ns()
            await stub.GetTradingState(risk_pb2.GetTradingStateRequest())
            samples.append(time.perf_counter_ns() - started)
    await server.stop(0)
    return latency_summary(samples)


async def calls_against(
    address: str, seconds: float, client: ClientSecurity, interval_s: float = 0.01
) -> dict[str, object]:
    """GetTradingState against a running risk service for `seconds`, one call every interval_s, through the
    platform's client channel (as order-management calls risk: pass its certificate)."""
    samples = []
    async with channel(address, security=client) as open_channel:
        stub = risk_pb2_grpc.RiskServiceStub(open_channel)
        for _ in range(50):
            await stub.GetTradingState(risk_pb2.GetTradingStateRequest())
        deadline = time.monotonic() + seconds
        next_call = time.monotonic()
        while time.monotonic() < deadline:
            started = time.perf_counter_ns()
            await stub.GetTradingState(risk_pb2.GetTradingStateRequest())
            samples.append(time.perf_counter_ns() - started)
            next_call += interval_s
            await asyncio.sleep(max(0.0, next_call - time.monotonic()))
    return {"get_trading_state": latency_summary(samples), "interval_ms": interval_s * 1000}


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # measure, not print
    with dev_identities() as identities:
        viewer = identities.client(token=identities.user_token("bench", [VIEWER]))
        figures = {
            "unary_call_with_interceptors": asyncio.run(run(log_calls=True, client=viewer)),
            "note": "client and server in one process on loopback, mTLS and a verified viewer token (revocation "
            "checked in Redis on every call); logging filtered at ERROR level",
        }
    write_results("grpc_unary", figures)


if __name__ == "__main__":
    main()
