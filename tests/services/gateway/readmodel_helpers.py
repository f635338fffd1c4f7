"""Helpers of the read-model and REST API tests: real records of the order path (a signal, its order's events, the
risk decision, the broker's reports, the fill, the position, the execution quality), published to the session's
real broker under the test's namespace, and a started read model (Feed) reading them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from gateway_service.readmodel import TOPICS, Caps, Fanout, Feed, ReadModel
from trading.analytics.v1 import analytics_pb2
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading.signal.v1 import signal_pb2
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope
from trading_platform.ids import client_order_id
from trading_platform.messaging import Publisher, ensure_topics
from trading_platform.testing.plugin import FAST_GROUP_OPTIONS

READ_TOPICS = sorted({*TOPICS, *(f"{name}.dlq" for name in TOPICS)})


async def wait_until(check: Callable[[], bool | Awaitable[bool]], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = check()
        if isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running_feed(bootstrap: str, namespace: str, caps: Caps | None = None) -> AsyncIterator[Feed]:
    await ensure_topics(bootstrap, READ_TOPICS, namespace=namespace)
    feed = Feed(bootstrap, ReadModel(caps), Fanout(50), namespace=namespace, group_options=FAST_GROUP_OPTIONS)  # type: ignore[arg-type]
    await feed.start()
    try:
        yield feed
    finally:
        await feed.stop()


@dataclass
class OrderPath:
    """One order's records, from the signal to the fill, as the services publish them."""

    symbol: str
    quantity: str = "10"
    price: str = "101.25"
    ts_ns: int = 0

    def __post_init__(self) -> None:
        self.ts_ns = self.ts_ns or time.time_ns()
        self.signal_id = str(uuid.uuid4())
        self.decision_id = str(uuid.uuid4())
        self.client_order_id = client_order_id("test-strategy", self.signal_id, self.symbol, 0)
        self.broker_order_id = f"broker-{uuid.uuid4().hex[:8]}"
        self.fill_id = f"fill-{uuid.uuid4().hex[:8]}"

    def envelope(self, producer: str, offset_ms: int, message_id: str | None = None) -> common_pb2.Envelope:
        return new_envelope(
            producer, correlation_id=self.signal_id, ts_event=self.ts_ns + offset_ms * 1_000_000, message_id=message_id
        )

    def signal(self) -> signal_pb2.SignalGenerated:
        return signal_pb2.SignalGenerated(
            envelope=self.envelope("signal", 0, self.signal_id),
            symbol=self.symbol,
            strategy_id="test-strategy",
            target_weight=0.25,
            reference_price=to_proto(self.price),
            model_name="trend-ppo",
            model_version="3",
            feature_hash="ab" * 32,
            bar_id=str(uuid.uuid4()),
            bar_ts=self.ts_ns - 60_000_000_000,
        )

    def order(self, status: int, filled: str | None = None) -> oms_pb2.Order:
        return oms_pb2.Order(
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=common_pb2.ORDER_SIDE_BUY,
            quantity=to_proto(self.quantity),
            order_type=common_pb2.ORDER_TYPE_MARKET,
            time_in_force=common_pb2.TIME_IN_FORCE_DAY,
            status=status,  # type: ignore[arg-type]
            filled_quantity=to_proto(filled or "0"),
            average_fill_price=to_proto(self.price if filled else None),
            lineage=oms_pb2.OrderLineage(
                signal_id=self.signal_id,
                strategy_id="test-strategy",
                model_version="3",
                feature_hash="ab" * 32,
                risk_decision_id=self.decision_id,
                broker_order_id=self.broker_order_id if status >= oms_pb2.ORDER_STATUS_ACCEPTED else "",
            ),
            fill_ids=[self.fill_id] if filled else [],
            created_at=self.ts_ns + 1_000_000,
            updated_at=self.ts_ns,
        )

    def event(self, kind: int, status: int, offset_ms: int, filled: str | None = None) -> oms_pb2.OrderEvent:
        event = oms_pb2.OrderEvent(
            envelope=self.envelope("order-management", offset_ms),
            event_type=kind,  # type: ignore[arg-type]
            client_order_id=self.client_order_id,
            order=self.order(status, filled),
        )
        if filled:
            event.last_quantity.CopyFrom(to_proto(filled))
            event.last_price.CopyFrom(to_proto(self.price))
            event.fill_id = self.fill_id
        return event

    def decision(self, approved: bool = True) -> risk_pb2.RiskDecision:
        return risk_pb2.RiskDecision(
            envelope=self.envelope("risk", 2, self.decision_id),
            client_order_id=self.client_order_id,
            approved=approved,
            reason_code=risk_pb2.REASON_CODE_APPROVED if approved else risk_pb2.REASON_CODE_MAX_POSITION,
            reason="ok" if approved else "position limit",
            trading_state=risk_pb2.TRADING_STATE_ACTIVE,
            limits_version="v1",
            symbol=self.symbol,
            side=common_pb2.ORDER_SIDE_BUY,
            quantity=to_proto(self.quantity),
        )

    def report(self, kind: int, offset_ms: int) -> execution_pb2.ExecutionReport:
        return execution_pb2.ExecutionReport(
            envelope=self.envelope("execution", offset_ms),
            report_type=kind,  # type: ignore[arg-type]
            client_order_id=self.client_order_id,
            broker_order_id=self.broker_order_id,
            symbol=self.symbol,
            side=common_pb2.ORDER_SIDE_BUY,
            order_quantity=to_proto(self.quantity),
        )

    def position(self, realized: str = "0", unrealized: str = "12.5") -> oms_pb2.PositionChanged:
        return oms_pb2.PositionChanged(
            envelope=self.envelope("order-management", 9),
            position=oms_pb2.Position(
                symbol=self.symbol,
                quantity=to_proto(self.quantity),
                average_entry_price=to_proto(self.price),
                realized_pnl=to_proto(realized),
                unrealized_pnl=to_proto(unrealized),
                market_price=to_proto(self.price),
            ),
            client_order_id=self.client_order_id,
            fill_id=self.fill_id,
        )

    def quality(self) -> execution_pb2.ExecutionQualityMeasured:
        return execution_pb2.ExecutionQualityMeasured(
            envelope=self.envelope("execution", 10),
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            submit_to_accept_ns=3_000_000,
            submit_to_first_fill_ns=8_000_000,
            submit_to_last_fill_ns=8_000_000,
            arrival_price=to_proto(self.price),
            average_fill_price=to_proto(self.price),
            slippage_bps=1.5,
            fill_ratio=1.0,
        )

    async def publish(self, publisher: Publisher, *, fill: bool = True) -> None:
        """The records in the order the services write them (each to its own topic)."""
        key = self.client_order_id
        await publisher.publish("signal.signals.v1", self.signal(), key=self.symbol)
        await publisher.publish(
            "oms.events.v1", self.event(oms_pb2.ORDER_EVENT_TYPE_INITIALIZED, oms_pb2.ORDER_STATUS_INITIALIZED, 1), key
        )
        await publisher.publish("risk.decisions.v1", self.decision(), key)
        await publisher.publish(
            "oms.events.v1", self.event(oms_pb2.ORDER_EVENT_TYPE_SUBMITTED, oms_pb2.ORDER_STATUS_SUBMITTED, 3), key
        )
        await publisher.publish("execution.reports.v1", self.report(execution_pb2.EXECUTION_REPORT_TYPE_NEW, 4), key)
        await publisher.publish(
            "oms.events.v1", self.event(oms_pb2.ORDER_EVENT_TYPE_ACCEPTED, oms_pb2.ORDER_STATUS_ACCEPTED, 5), key
        )
        if fill:
            await publisher.publish(
                "oms.events.v1",
                self.event(oms_pb2.ORDER_EVENT_TYPE_FILLED, oms_pb2.ORDER_STATUS_FILLED, 8, filled=self.quantity),
                key,
            )
            await publisher.publish("oms.positions.v1", self.position(), key=self.symbol)
            await publisher.publish("execution.quality.v1", self.quality(), key)


def start_of_day(equity: str, book_pnl: str = "0", day: str = "2026-12-01") -> risk_pb2.StartOfDayEquityRecorded:
    return risk_pb2.StartOfDayEquityRecorded(
        envelope=new_envelope("risk"),
        trading_day=day,
        equity=to_proto(equity),
        book_pnl=to_proto(book_pnl),
        account_id="paper-1",
    )


def alert(rule: str, subject: str, firing: bool = True, ts_ns: int | None = None) -> analytics_pb2.Alert:
    now = ts_ns or time.time_ns()
    return analytics_pb2.Alert(
        envelope=new_envelope("analytics", ts_event=now),
        rule=rule,
        rules_version="1",
        subject=subject,
        status=analytics_pb2.ALERT_STATUS_FIRING if firing else analytics_pb2.ALERT_STATUS_RESOLVED,
        severity=analytics_pb2.ALERT_SEVERITY_WARNING,
        summary=f"{rule} on {subject}",
        value=42.0,
        threshold=10.0,
        starts_at=now,
    )


def publisher_of(bootstrap: str, namespace: str) -> Publisher:
    # The session's broker runs PLAINTEXT without ACLs: one publisher writes every service's topics.
    return Publisher(bootstrap, "test-records", namespace=namespace)


def items(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body["items"])


# -- a gateway with its read model, over the real Redis, OpenBao and Kafka ----------------------------------------
@dataclass
class Api:
    """A started gateway (its read model consuming the test's namespace) and a logged-in admin."""

    running: Any  # tests.services.gateway.helpers.Running
    publisher: Publisher

    @property
    def client(self) -> Any:
        return self.running.client

    @property
    def feed(self) -> Feed:
        return self.running.gateway.feed  # type: ignore[no-any-return]

    async def user(self, name: str, roles: list[str]) -> str:
        """A new user with these roles, logged in: its access token."""
        account = await self.client.create_user(self.running.admin_token, name, roles)
        return str(await self.client.token(account))

    async def get(self, path: str, token: str, **params: Any) -> Any:
        return await self.client.http.get(path, params=params, headers={"authorization": f"Bearer {token}"})


@asynccontextmanager
async def api_gateway(
    make_settings: Any, vault_root: Any, bootstrap: str, namespace: str, **config: Any
) -> AsyncIterator[Api]:
    from gateway_service.config import GatewayConfig

    from tests.services.gateway.helpers import Running, bootstrap_admin, start_gateway

    await ensure_topics(bootstrap, READ_TOPICS, namespace=namespace)
    # The tests read fast, from one address: the rate limits (tested on their own) are set out of the way.
    generous = {
        k: "100000/second" for k in ("rate_limit_user", "rate_limit_address") if k in GatewayConfig.model_fields
    }
    settings = make_settings(**{**generous, **config})
    gateway, client = await start_gateway(settings)
    client.app.state.feed = gateway.feed
    try:
        admin = await bootstrap_admin(client, vault_root, settings)
        running = Running(settings, gateway, client, admin, await client.token(admin), vault_root)
        async with publisher_of(bootstrap, namespace) as publisher:
            yield Api(running, publisher)
    finally:
        await client.aclose()
        await gateway.stop()
