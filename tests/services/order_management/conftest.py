"""What the order-management integration tests share: a risk gate and an execution service of their own (gRPC fakes
that approve and report the broker's account, positions and orders), OmsApp instances over the real broker, and readers of the log as a
read_committed consumer (what the platform sees) and a read_uncommitted one (what was written at all)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import Message
from oms_service.app import OmsApp
from oms_service.config import OmsSettings
from trading.execution.v1 import execution_pb2, execution_pb2_grpc
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading.signal.v1 import signal_pb2
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher, end_offsets, replay
from trading_platform.messaging.replay import end_offsets_of
from trading_platform.rpc import RpcServer, Servicer
from trading_platform.settings import load_settings
from trading_platform.topics import lookup

STRATEGY = "momentum"


class FakeRisk(risk_pb2_grpc.RiskServiceServicer):
    """Approves every order (and remembers what it was asked), after `delay_s` of deliberation."""

    def __init__(self) -> None:
        self.checked: list[str] = []
        self.delay_s = 0.0

    async def CheckOrder(self, request: risk_pb2.CheckOrderRequest, context: Any) -> risk_pb2.RiskDecision:
        self.checked.append(request.client_order_id)
        await asyncio.sleep(self.delay_s)
        return risk_pb2.RiskDecision(
            envelope=new_envelope("risk"),
            client_order_id=request.client_order_id,
            approved=True,
            reason_code=risk_pb2.REASON_CODE_APPROVED,
            symbol=request.symbol,
            side=request.side,
            quantity=request.quantity,
        )


class FakeExecution(execution_pb2_grpc.ExecutionServiceServicer):
    """The broker's account and positions, as the test sets them."""

    def __init__(self) -> None:
        self.positions: dict[str, Decimal] = {}
        self.equity: str | None = "100000"  # None: the account says no equity
        self.orders: list[execution_pb2.BrokerOrder] = []  # the broker's recent orders, newest first

    async def GetAccount(self, request: Any, context: Any) -> execution_pb2.BrokerAccount:
        return execution_pb2.BrokerAccount(account_id="test", equity=to_proto(self.equity), cash=to_proto("100000"))

    async def GetBrokerPositions(self, request: Any, context: Any) -> execution_pb2.GetBrokerPositionsResponse:
        return execution_pb2.GetBrokerPositionsResponse(
            positions=[execution_pb2.BrokerPosition(symbol=s, quantity=to_proto(q)) for s, q in self.positions.items()]
        )

    async def GetBrokerOrders(self, request: Any, context: Any) -> execution_pb2.GetBrokerOrdersResponse:
        return execution_pb2.GetBrokerOrdersResponse(orders=self.orders[: request.limit or 500])

    @staticmethod
    def order(
        cid: str, symbol: str, side: int, quantity: str, filled: str = "0", status: str = "new"
    ) -> execution_pb2.BrokerOrder:
        """An order as the broker lists it (GetBrokerOrders)."""
        return execution_pb2.BrokerOrder(
            client_order_id=cid,
            symbol=symbol,
            side=side,
            quantity=to_proto(quantity),
            filled_quantity=to_proto(filled),
            status=status,
        )


class Oms:
    def __init__(self, kafka: str, namespace: str, address: str, risk: FakeRisk, execution: FakeExecution) -> None:
        self.kafka = kafka
        self.namespace = namespace
        self.address = address
        self.risk = risk
        self.execution = execution
        self.apps: list[OmsApp] = []
        self.halts: dict[int, list[str]] = {}  # id(app) -> the reasons it halted for
        self._publisher: Publisher | None = None

    def settings(self, role: str = "live", reconcile_interval_s: float = 0.5, **sections: Any) -> OmsSettings:
        return load_settings(
            OmsSettings,
            kafka={"bootstrap_servers": self.kafka, "namespace": self.namespace, "rebalance_timeout_ms": 1000},
            oms={
                "risk_address": self.address,
                "execution_address": self.address,
                "reconcile_interval_s": reconcile_interval_s,
                **sections.pop("oms", {}),
            },
            deployment={"role": role, **sections.pop("deployment", {})},
            **sections,
        )

    async def start(self, role: str = "live", reconcile_interval_s: float = 0.5, **sections: Any) -> OmsApp:
        halts: list[str] = []
        app = OmsApp(self.settings(role, reconcile_interval_s, **sections), on_halt=halts.append)
        self.halts[id(app)] = halts
        await app.start()
        self.apps.append(app)
        return app

    async def stop(self, app: OmsApp) -> None:
        self.apps.remove(app)
        await app.stop()

    async def publisher(self) -> Publisher:
        if self._publisher is None:
            self._publisher = Publisher(self.kafka, "test", namespace=self.namespace)
            await self._publisher.start()
        return self._publisher

    async def signal(
        self, symbol: str, weight: float, price: str = "100", age_s: float = 0.0
    ) -> signal_pb2.SignalGenerated:
        """Publish a signal made age_s ago."""
        signal = signal_pb2.SignalGenerated(
            envelope=new_envelope("signal"),
            symbol=symbol,
            strategy_id=STRATEGY,
            target_weight=weight,
            reference_price=to_proto(price),
        )
        signal.envelope.ts_init -= int(age_s * 1e9)
        await (await self.publisher()).publish("signal.signals.v1", signal, key=symbol)
        return signal

    async def report(self, cid: str, symbol: str, kind: int, filled: str = "0", price: str = "100") -> None:
        report = execution_pb2.ExecutionReport(
            envelope=new_envelope("execution"),
            report_type=kind,
            client_order_id=cid,
            broker_order_id=f"b-{cid}",
            symbol=symbol,
        )
        if kind in (execution_pb2.EXECUTION_REPORT_TYPE_FILL, execution_pb2.EXECUTION_REPORT_TYPE_PARTIAL_FILL):
            report.fill_id = f"f-{cid}-{filled}"
            report.filled_quantity.CopyFrom(to_proto(filled))
            report.last_quantity.CopyFrom(to_proto(filled))
            report.last_price.CopyFrom(to_proto(price))
            report.average_fill_price.CopyFrom(to_proto(price))
        await (await self.publisher()).publish("execution.reports.v1", report, key=cid)

    async def committed(self, topic: str, shadow: bool = False) -> list[Any]:
        """The topic as the platform reads it: read_committed, once the transactions open at the call have ended (or
        after two seconds: a transaction a test leaves open stays open). A commit returns when the coordinator has
        logged it; its markers reach the partitions a moment later, and until then read_committed does not see it."""
        namespace = self.namespace + ("shadow." if shadow else "")
        physical = namespace + lookup(topic).name
        high = await self.high_watermarks(physical)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            stable = (await end_offsets(self.kafka, [physical])).get(physical, {})
            if all(stable.get(p, 0) >= end for p, end in high.items()):
                break
            await asyncio.sleep(0.02)
        return [m.value async for m in replay(self.kafka, topic, namespace=namespace)]

    async def high_watermarks(self, physical: str) -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.kafka, isolation_level="read_uncommitted")
        await consumer.start()
        try:
            return (await end_offsets_of(consumer, [physical])).get(physical, {})
        finally:
            await consumer.stop()

    async def written(self, topic: str) -> list[Any]:
        """Every record written to the topic, committed, aborted or still open (read_uncommitted)."""
        registered = lookup(topic)
        physical = self.namespace + registered.name
        # From the beginning, also as the reset policy: a reset to the end begun at assign() can land after
        # seek_to_beginning() and skip everything.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.kafka,
            enable_auto_commit=False,
            isolation_level="read_uncommitted",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            ids = await consumer._client._wait_on_metadata(physical)  # tracked, so a refresh keeps it
            partitions = [TopicPartition(physical, p) for p in sorted(ids)]
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)  # the high watermark: everything written
            await consumer.seek_to_beginning(*partitions)
            values: list[Message] = []
            deadline = time.monotonic() + 20
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                assert time.monotonic() < deadline, f"could not read {physical} to its end"
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    values += [registered.message_type.FromString(r.value) for r in records if r.value is not None]
            return values
        finally:
            await consumer.stop()

    async def until(self, condition: Callable[[], Any], what: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    async def close(self) -> None:
        for app in list(self.apps):
            await self.stop(app)
        if self._publisher is not None:
            await self._publisher.stop()


@pytest.fixture
async def oms(kafka_bootstrap: str, topic_namespace: str) -> AsyncIterator[Oms]:
    risk, execution = FakeRisk(), FakeExecution()
    server = RpcServer(
        [
            Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, risk, "trading.risk.v1.RiskService"),
            Servicer(
                execution_pb2_grpc.add_ExecutionServiceServicer_to_server,
                execution,
                "trading.execution.v1.ExecutionService",
            ),
        ],
        log_calls=False,
    )
    await server.start()
    harness = Oms(kafka_bootstrap, topic_namespace, server.address, risk, execution)
    try:
        yield harness
    finally:
        await harness.close()
        await server.stop(0)
