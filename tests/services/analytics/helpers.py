"""Builders of the platform's input messages and the analytics app under faust's test context."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics_service.config import AnalyticsConfig
from analytics_service.rules import RuleSet, load_rules, parse_rules
from analytics_service.streams import Analytics, Broker
from google.protobuf.message import Message
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.oms.v1 import oms_pb2
from trading.signal.v1 import signal_pb2
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope

NS = 1_000_000_000
T0 = 1_796_000_040 * NS  # a minute boundary: 2026-11-30T00:54:00Z
E = oms_pb2


@dataclass
class Recorded:
    """What the app published, in order: (topic, key, message), and its dead letters (source topic, letter)."""

    rows: list[tuple[str, str, Message]] = field(default_factory=list)
    dead_letters: list[tuple[str, common_pb2.DeadLetter]] = field(default_factory=list)

    async def publish(self, topic: str, message: Message, key: str) -> None:
        self.rows.append((topic, key, message))

    async def publish_dead_letter(self, dead_letter: common_pb2.DeadLetter, source_topic: str) -> None:
        self.dead_letters.append((source_topic, dead_letter))

    def latest(self, topic: str) -> dict[str, Any]:
        """The latest row per key of a topic (what compaction keeps)."""
        return {key: message for t, key, message in self.rows if t == topic}

    def on(self, topic: str) -> list[Message]:
        return [message for t, _, message in self.rows if t == topic]


class Harness:
    """The analytics app with a recording sink; `put(topic, message)` feeds one record through the topic's agent
    in faust's test context (the agent's real code: decode, fold, publish)."""

    def __init__(self, tmp_path: Path, rules: RuleSet | None = None, **config: Any) -> None:
        self.sink = Recorded()
        self.now = T0
        self.app = Analytics(
            AnalyticsConfig(data_dir=tmp_path / "faust", **config),
            rules or load_rules(),
            self.sink,
            Broker("kafka://127.0.0.1:9"),  # never contacted: the test context feeds the agents directly
            clock=lambda: self.now,
        )

    async def put(self, topic: str, message: Message | bytes, key: str = "k") -> None:
        raw = message if isinstance(message, bytes) else message.SerializeToString()
        async with self.app.agents[topic].test_context() as agent:
            await agent.put(raw, key=key.encode())

    async def put_many(self, items: Iterator[tuple[str, Message]]) -> None:
        for topic, message in items:
            await self.put(topic, message)


def rules(text: str) -> RuleSet:
    return parse_rules(text, "test rules")


def envelope(ts: int, producer: str = "order-management") -> common_pb2.Envelope:
    return new_envelope(producer, ts_event=ts)


def signal(symbol: str, price: str, ts: int) -> signal_pb2.SignalGenerated:
    return signal_pb2.SignalGenerated(
        envelope=envelope(ts, "signal"), symbol=symbol, target_weight=0.1, reference_price=to_proto(price)
    )


def order(
    order_id: str, symbol: str, side: int, quantity: str, *, signal_id: str = "", filled: str = "0", average: str = ""
) -> oms_pb2.Order:
    return oms_pb2.Order(
        client_order_id=order_id,
        symbol=symbol,
        side=side,
        quantity=to_proto(quantity),
        filled_quantity=to_proto(filled),
        average_fill_price=to_proto(average) if average else common_pb2.Decimal(),
        lineage=oms_pb2.OrderLineage(signal_id=signal_id),
    )


def order_event(kind: int, the_order: oms_pb2.Order, ts: int, **fields: Any) -> oms_pb2.OrderEvent:
    return oms_pb2.OrderEvent(
        envelope=envelope(ts), event_type=kind, client_order_id=the_order.client_order_id, order=the_order, **fields
    )


def fill_event(
    the_order: oms_pb2.Order, fill_id: str, quantity: str, price: str, ts: int, *, final: bool = True
) -> oms_pb2.OrderEvent:
    kind = E.ORDER_EVENT_TYPE_FILLED if final else E.ORDER_EVENT_TYPE_PARTIALLY_FILLED
    return order_event(
        kind, the_order, ts, fill_id=fill_id, last_quantity=to_proto(quantity), last_price=to_proto(price)
    )


def quality_measure(
    order_id: str, symbol: str, slippage: float, ts: int, *, accept_ms: float = 5, fill_ms: float = 20, ratio: float = 1
) -> execution_pb2.ExecutionQualityMeasured:
    return execution_pb2.ExecutionQualityMeasured(
        envelope=envelope(ts, "execution"),
        client_order_id=order_id,
        symbol=symbol,
        submit_to_accept_ns=int(accept_ms * 1e6),
        submit_to_first_fill_ns=int(fill_ms * 1e6) if ratio else 0,
        slippage_bps=slippage,
        fill_ratio=ratio,
    )


def filled_order(
    order_id: str, symbol: str, price: str, fill_price: str, ts: int, slippage: float, *, quantity: str = "10"
) -> list[tuple[str, Message]]:
    """The records of one order from signal to fill and its execution measure."""
    decision = signal(symbol, price, ts - 50_000_000)
    placed = order(order_id, symbol, common_pb2.ORDER_SIDE_BUY, quantity, signal_id=decision.envelope.message_id)
    done = order(
        order_id,
        symbol,
        common_pb2.ORDER_SIDE_BUY,
        quantity,
        signal_id=decision.envelope.message_id,
        filled=quantity,
        average=fill_price,
    )
    return [
        ("signal.signals.v1", decision),
        ("oms.events.v1", order_event(E.ORDER_EVENT_TYPE_INITIALIZED, placed, ts - 40_000_000)),
        ("oms.events.v1", order_event(E.ORDER_EVENT_TYPE_SUBMITTED, placed, ts - 30_000_000)),
        ("oms.events.v1", order_event(E.ORDER_EVENT_TYPE_ACCEPTED, placed, ts - 25_000_000)),
        ("oms.events.v1", fill_event(done, f"{order_id}-f1", quantity, fill_price, ts)),
        ("execution.quality.v1", quality_measure(order_id, symbol, slippage, ts + 1_000_000)),
    ]
