"""The risk service on the real broker: a gate that rebuilds its book, keeps its halts and limits, reads its day's
equity from the broker account, sees the whole book in every instance, dead-letters stale input, and puts a second
risk officer's eyes on every change that loosens risk."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import grpc
import pytest
from execution_service.app import ExecutionApp
from execution_service.config import ExecutionSettings
from google.protobuf.message import Message
from paper_exchange.testing import RunningExchange
from risk_service.app import RiskApp
from risk_service.config import RiskSettings
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2_grpc
from trading.marketdata.v1 import marketdata_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope
from trading_platform.identity import RISK_OFFICER, TRADER, Identity, identity_scope
from trading_platform.messaging import Publisher, replay
from trading_platform.rpc import RpcServer, Servicer
from trading_platform.settings import load_settings

pytestmark = pytest.mark.integration
R = risk_pb2
FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 300, "rebalance_timeout_ms": 1500}
ALICE = Identity("alice", "user", frozenset({RISK_OFFICER}))
BOB = Identity("bob", "user", frozenset({RISK_OFFICER}))
TRACY = Identity("tracy", "user", frozenset({TRADER}))


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class CallContext:
    """The part of grpc's ServicerContext the servicer uses, for in-process calls: abort raises."""

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


CTX = CallContext()


def risk_settings(kafka_bootstrap: str, namespace: str, **risk: Any) -> RiskSettings:
    return load_settings(
        RiskSettings,
        service_name="risk",
        kafka={"bootstrap_servers": kafka_bootstrap, "namespace": namespace, **FAST_GROUP},
        risk={"execution_address": "127.0.0.1:1", "account_retry_s": 0.2, **risk},
    )


@asynccontextmanager
async def running(settings: RiskSettings, equity: str | None = "100000") -> AsyncIterator[RiskApp]:
    """A started gate; with `equity`, a trading day whose start-of-day equity is known, as if the broker said so."""
    app = RiskApp(settings)
    await app.start()
    try:
        if equity is not None and app.engine.today_without_equity():
            app.engine.start_day(app.engine.trading_day(time.time_ns()), Decimal(equity))
        app.engine.on_price("AAPL", Decimal("100"))
        yield app
    finally:
        await app.stop()


def check(cid: str, quantity: str = "10", side: int = common_pb2.ORDER_SIDE_BUY) -> risk_pb2.CheckOrderRequest:
    return R.CheckOrderRequest(
        client_order_id=cid, symbol="AAPL", side=side, quantity=to_proto(quantity), reference_price=to_proto("100")
    )


async def topic(bootstrap: str, namespace: str, name: str) -> list[Any]:
    return [m.value async for m in replay(bootstrap, name, namespace=namespace)]


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def stamped(message: Message, ts_event: int | None = None, made_at: int | None = None) -> Message:
    """With an envelope as its writer makes it; `made_at` sets ts_init (when the message was made)."""
    envelope = new_envelope("test", ts_event=ts_event)
    if made_at is not None:
        envelope.ts_init = made_at
    message.envelope.CopyFrom(envelope)  # type: ignore[attr-defined]
    return message


def position(symbol: str, quantity: str, price: str = "100", realized: str = "0") -> oms_pb2.PositionChanged:
    changed = oms_pb2.PositionChanged(
        position=oms_pb2.Position(
            symbol=symbol,
            quantity=to_proto(quantity),
            average_entry_price=to_proto(price),
            realized_pnl=to_proto(realized),
        )
    )
    return stamped(changed)  # type: ignore[return-value]


@asynccontextmanager
async def bus_publisher(bootstrap: str, namespace: str) -> AsyncIterator[Publisher]:
    publisher = Publisher(bootstrap, "test", namespace=namespace)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()


async def set_state(app: RiskApp, state: int, reason: str, who: Identity | None, cancel: bool = False) -> Any:
    with identity_scope(who):
        return await app.SetTradingState(
            R.SetTradingStateRequest(state=state, reason=reason, cancel_open_orders=cancel), CTX
        )


async def update_limits(app: RiskApp, who: Identity | None, reason: str = "", **changes: Any) -> Any:
    limits = app.engine.limits_proto()
    replace = False
    for key, value in changes.items():
        if key == "restricted_symbols":
            del limits.restricted_symbols[:]
            limits.restricted_symbols.extend(value)
            replace = True
        elif key == "version":
            limits.version = value
        else:
            getattr(limits, key).CopyFrom(to_proto(value))
    with identity_scope(who):
        return await app.UpdateLimits(
            R.UpdateLimitsRequest(limits=limits, reason=reason, replace_restricted_symbols=replace), CTX
        )


async def approve(app: RiskApp, who: Identity | None, change_id: str, content_hash: str) -> Any:
    with identity_scope(who):
        return await app.ApproveChange(R.ApproveChangeRequest(change_id=change_id, content_hash=content_hash), CTX)


async def test_decisions_limits_and_the_state_survive_a_restart(kafka_bootstrap: str, topic_namespace: str) -> None:
    """Holes 2 and 3: decisions on the bus; a tightened limit and a halt are on risk's compacted topics, and a
    restarted gate (nothing in memory, no Redis) comes back with both."""
    settings = risk_settings(kafka_bootstrap, topic_namespace)
    async with running(settings) as app:
        decision = await app.CheckOrder(check("co-1"), CTX)
        assert decision.approved
        tightened = await update_limits(app, ALICE, "tighter", max_order_quantity="5", version="v2")
        assert tightened.outcome.applied and tightened.limits.version == "v2"
        denied = await app.CheckOrder(check("co-2"), CTX)
        assert denied.reason_code == R.REASON_CODE_MAX_ORDER_QUANTITY and denied.limits_version == "v2"
        halted = await set_state(app, R.TRADING_STATE_HALTED, "drill", ALICE, cancel=True)
        assert halted.state == R.TRADING_STATE_HALTED and halted.outcome.applied

    decisions = await topic(kafka_bootstrap, topic_namespace, "risk.decisions.v1")
    assert [(d.client_order_id, d.approved) for d in decisions] == [("co-1", True), ("co-2", False)]
    assert decisions[0].envelope.message_id == decision.envelope.message_id
    changes = await topic(kafka_bootstrap, topic_namespace, "risk.limits.v1")
    assert changes[-1].previous.version == "v1" and changes[-1].limits.version == "v2"
    assert changes[-1].actor == "user:alice"  # the verified caller, not a field of the request
    states = await topic(kafka_bootstrap, topic_namespace, "risk.state.v1")
    assert states[-1].state == R.TRADING_STATE_HALTED and states[-1].cancel_open_orders
    assert states[-1].actor == "user:alice"
    assert await topic(kafka_bootstrap, topic_namespace, "oms.commands.v1") == []

    async with running(settings) as restarted:
        assert restarted.engine.trading_state == R.TRADING_STATE_HALTED
        assert restarted.engine.limits.limits_version == "v2" and restarted.engine.limits.max_order_quantity == 5
        assert (await restarted.CheckOrder(check("co-3", "1"), CTX)).reason_code == R.REASON_CODE_TRADING_HALTED


async def test_a_loss_halt_survives_a_restart(kafka_bootstrap: str, topic_namespace: str) -> None:
    """Hole 3: the gate's own loss halt is durable: a restart does not lift it."""
    settings = risk_settings(kafka_bootstrap, topic_namespace, max_daily_loss="1000")
    async with running(settings) as app, bus_publisher(kafka_bootstrap, topic_namespace) as publisher:
        await publisher.publish("oms.positions.v1", position("AAPL", "100", price="120"), key="AAPL")  # -2,000
        await wait_for(lambda: _async("AAPL" in app.engine.positions), 15, "the position")
        verdict = await app.CheckOrder(check("loss-1"), CTX)
        assert verdict.reason_code == R.REASON_CODE_DAILY_LOSS
        assert app.engine.trading_state == R.TRADING_STATE_HALTED
    async with running(settings) as restarted:
        assert restarted.engine.trading_state == R.TRADING_STATE_HALTED
        assert "daily loss" in restarted.engine.state_reason


async def test_a_restarted_gate_rebuilds_its_book_before_it_approves(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    """Holes 2 and 5: positions, working orders (approved, not terminal) and used order ids come back from the bus;
    until they have, the gate denies."""
    settings = risk_settings(kafka_bootstrap, topic_namespace, max_position_notional="5000")
    async with running(settings) as app, bus_publisher(kafka_bootstrap, topic_namespace) as publisher:
        await publisher.publish("oms.positions.v1", position("AAPL", "20"), key="AAPL")
        await wait_for(lambda: _async("AAPL" in app.engine.positions), 15, "the position")
        assert (await app.CheckOrder(check("w-1", "10"), CTX)).approved  # working: 20 held + 10
        assert (await app.CheckOrder(check("w-2", "10"), CTX)).approved  # 20 + 20
        ended = oms_pb2.OrderEvent(
            client_order_id="w-2",
            event_type=oms_pb2.ORDER_EVENT_TYPE_CANCELED,
            order=oms_pb2.Order(client_order_id="w-2", status=oms_pb2.ORDER_STATUS_CANCELED, quantity=to_proto("10")),
        )
        await publisher.publish("oms.events.v1", stamped(ended), key="w-2")
        await wait_for(lambda: _async("w-2" not in app.engine.working), 10, "the cancel to release w-2")

    cold = RiskApp(settings)  # built, not started: its book is not rebuilt
    assert (await cold.CheckOrder(check("cold-1", "1"), CTX)).reason_code == R.REASON_CODE_STALE_RISK_STATE
    await cold.consumer.close()
    await cold.publisher.stop()
    async with running(settings) as restarted:
        assert restarted.engine.positions["AAPL"].quantity == 20
        assert set(restarted.engine.working) == {"w-1"}
        # 20 held + 10 working (w-1) + 21 > 50: the old empty book would have approved it.
        assert (await restarted.CheckOrder(check("w-3", "21"), CTX)).reason_code == R.REASON_CODE_MAX_POSITION
        assert (await restarted.CheckOrder(check("w-1", "11"), CTX)).reason_code == R.REASON_CODE_DUPLICATE_ORDER
        assert (await restarted.CheckOrder(check("w-4", "20"), CTX)).approved  # 20 + 10 + 20 = 50


async def _async(value: bool) -> bool:
    return value


async def test_every_instance_reads_the_whole_book(kafka_bootstrap: str, topic_namespace: str) -> None:
    """Hole 6: two gates side by side each get every partition of their inputs and see every position and each
    other's approvals (in one shared group each would see about half)."""
    settings = risk_settings(kafka_bootstrap, topic_namespace, max_position_notional="5000")
    symbols = ["AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA"]
    async with running(settings) as first, running(settings) as second:
        assert first.group != second.group
        for app in (first, second):
            assigned = app.consumer._consumer.assignment()
            assert {p.partition for p in assigned if p.topic.endswith("oms.positions.v1")} == {0, 1, 2}
            assert {p.partition for p in assigned if p.topic.endswith("marketdata.bars.v1")} == {0, 1, 2}
        async with bus_publisher(kafka_bootstrap, topic_namespace) as publisher:
            for symbol in symbols:
                await publisher.publish("oms.positions.v1", position(symbol, "5"), key=symbol)

        async def both_see_all() -> bool:
            return all(set(symbols) <= set(app.engine.positions) for app in (first, second))

        await wait_for(both_see_all, 15, "both instances to see every position")
        assert (await first.CheckOrder(check("pod-1", "40"), CTX)).approved  # 5 held + 40
        await wait_for(lambda: _async("pod-1" in second.engine.working), 10, "the other pod to see the approval")
        assert (await second.CheckOrder(check("pod-2", "10"), CTX)).reason_code == R.REASON_CODE_MAX_POSITION


async def test_a_stale_bar_is_dead_lettered_with_its_reason(kafka_bootstrap: str, topic_namespace: str) -> None:
    """A bar made longer ago than max_market_data_age_s is refused with its reason; a bar of replayed history (old
    market time, made just now, as the paper exchange sends them) is taken."""
    settings = risk_settings(kafka_bootstrap, topic_namespace, max_market_data_age_s=60)
    async with running(settings) as app:
        old = time.time_ns() - 600 * 1_000_000_000
        history = time.time_ns() - 10 * 365 * 86400 * 1_000_000_000
        async with bus_publisher(kafka_bootstrap, topic_namespace) as publisher:
            stale = stamped(marketdata_pb2.Bar(symbol="OLD", close=10), old, made_at=old)
            await publisher.publish("marketdata.bars.v1", stale, key="OLD")
            replayed = stamped(marketdata_pb2.Bar(symbol="NEW", close=20), history)
            await publisher.publish("marketdata.bars.v1", replayed, key="NEW")
        await wait_for(lambda: _async("NEW" in app.engine.last_price), 10, "the bar of replayed history")

        async def dead_lettered() -> bool:
            return bool(await topic(kafka_bootstrap, topic_namespace, "marketdata.bars.v1.dlq"))

        await wait_for(dead_lettered, 10, "the stale bar's dead letter")
        assert "OLD" not in app.engine.last_price
    [letter] = await topic(kafka_bootstrap, topic_namespace, "marketdata.bars.v1.dlq")
    assert letter.reason_code == "stale_message" and "max_market_data_age_s" in letter.reason


def execution_settings(kafka_bootstrap: str, namespace: str, exchange: RunningExchange) -> ExecutionSettings:
    return load_settings(
        ExecutionSettings,
        service_name="execution",
        kafka={"bootstrap_servers": kafka_bootstrap, "namespace": namespace},
        broker={"base_url": exchange.url, "api_key_id": exchange.key_id, "api_secret_key": exchange.secret_key},
    )


async def test_the_days_equity_comes_from_the_broker_account_and_fails_closed_without_it(
    kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange
) -> None:
    """Hole 4: the start-of-day equity is execution's GetAccount equity (the paper exchange's account), recorded on
    risk.equity.v1 so a restart the same day keeps it; with neither, every order is denied."""
    unknown = risk_settings(kafka_bootstrap, topic_namespace)
    async with running(unknown, equity=None) as blind:
        verdict = await blind.CheckOrder(check("no-equity"), CTX)
        assert verdict.reason_code == R.REASON_CODE_STALE_RISK_STATE and "start-of-day equity" in verdict.reason

    execution = ExecutionApp(execution_settings(kafka_bootstrap, topic_namespace, paper_exchange))
    server = RpcServer(
        [
            Servicer(
                execution_pb2_grpc.add_ExecutionServiceServicer_to_server,
                execution,
                "trading.execution.v1.ExecutionService",
            )
        ]
    )
    await server.start()
    account = paper_exchange.exchange.account_json()
    try:
        settings = risk_settings(kafka_bootstrap, topic_namespace, execution_address=server.address)
        async with running(settings, equity=None) as app:
            await wait_for(lambda: _async(app.engine.day_equity is not None), 15, "the start-of-day equity")
            assert app.engine.day_equity is not None
            assert app.engine.day_equity.equity == Decimal(str(account["equity"]))
            assert (await app.CheckOrder(check("with-equity"), CTX)).approved
    finally:
        await server.stop(0)
        for consumer in (execution.commands, execution.decisions, execution.kill_switch):  # built, never started
            await consumer.close()
        await execution.publisher.stop()
    [recorded] = await topic(kafka_bootstrap, topic_namespace, "risk.equity.v1")
    assert Decimal(recorded.equity.value) == Decimal(str(account["equity"]))
    async with running(unknown, equity=None) as restarted:  # execution unreachable: the record of today is enough
        assert restarted.engine.day_equity is not None and restarted.engine.day_equity.day == recorded.trading_day
        assert (await restarted.CheckOrder(check("after-restart"), CTX)).approved


async def refused(call: Awaitable[Any]) -> Aborted:
    with pytest.raises(Aborted) as refusal:
        await call
    return refusal.value


async def test_changes_need_a_verified_risk_officer(kafka_bootstrap: str, topic_namespace: str) -> None:
    """No identity, or one without the risk-officer role: PERMISSION_DENIED and nothing changes (the request's
    `actor` field names nobody)."""
    settings = risk_settings(kafka_bootstrap, topic_namespace)
    async with running(settings) as app:
        before = app.engine.limits
        for who in (None, TRACY):
            with identity_scope(who):
                request = R.SetTradingStateRequest(state=R.TRADING_STATE_HALTED, reason="x", actor="user:alice")
                denied = await refused(app.SetTradingState(request, CTX))
            assert denied.code == grpc.StatusCode.PERMISSION_DENIED
            denied = await refused(update_limits(app, who, max_order_quantity="1"))
            assert denied.code == grpc.StatusCode.PERMISSION_DENIED
            denied = await refused(approve(app, who, "any", "hash"))
            assert denied.code == grpc.StatusCode.PERMISSION_DENIED
        assert app.engine.trading_state == R.TRADING_STATE_ACTIVE and app.engine.limits == before
    for name in ("risk.state.v1", "risk.limits.v1", "risk.changes.v1"):
        assert await topic(kafka_bootstrap, topic_namespace, name) == []


async def test_raising_limits_waits_for_a_second_risk_officer(kafka_bootstrap: str, topic_namespace: str) -> None:
    settings = risk_settings(kafka_bootstrap, topic_namespace, restricted_symbols=["GME"])
    async with running(settings) as app:
        mixed = await update_limits(
            app, ALICE, "tighter size, more room for loss", max_order_quantity="500", max_daily_loss="20000"
        )
        assert not mixed.outcome.applied and mixed.outcome.change_id
        assert mixed.limits.max_order_quantity.value == "500"  # the lowered limit is in force at once
        assert app.engine.limits.max_daily_loss == 10000  # the raise is not
        assert mixed.outcome.pending.limits.raised.max_daily_loss.value == "20000"
        change_id, content = mixed.outcome.change_id, mixed.outcome.content_hash
        listed = await app.ListPendingChanges(R.ListPendingChangesRequest(), CTX)
        assert [(c.change_id, c.requested_by) for c in listed.changes] == [(change_id, "user:alice")]

        assert (await refused(approve(app, ALICE, change_id, content))).code == grpc.StatusCode.PERMISSION_DENIED
        assert (await refused(approve(app, BOB, change_id, "0" * 64))).code == grpc.StatusCode.FAILED_PRECONDITION
        assert app.engine.limits.max_daily_loss == 10000
        approved = await approve(app, BOB, change_id, content)
        assert approved.limits.max_daily_loss.value == "20000" and approved.limits.max_order_quantity.value == "500"
        assert app.engine.limits.max_daily_loss == 20000
        assert (await refused(approve(app, BOB, change_id, content))).code == grpc.StatusCode.NOT_FOUND  # used up

        unrestrict = await update_limits(app, ALICE, "GME is fine again", restricted_symbols=[])
        assert not unrestrict.outcome.applied and list(unrestrict.limits.restricted_symbols) == ["GME"]
        assert list(unrestrict.outcome.pending.limits.unrestricted_symbols) == ["GME"]
        await approve(app, BOB, unrestrict.outcome.change_id, unrestrict.outcome.content_hash)
        assert app.engine.limits.restricted_symbols == []

    events = await topic(kafka_bootstrap, topic_namespace, "risk.changes.v1")
    first = [(e.event_type, e.actor) for e in events if e.change_id == change_id]
    assert first == [
        (R.CHANGE_EVENT_TYPE_REQUESTED, "user:alice"),
        (R.CHANGE_EVENT_TYPE_REFUSED, "user:alice"),
        (R.CHANGE_EVENT_TYPE_REFUSED, "user:bob"),
        (R.CHANGE_EVENT_TYPE_APPROVED, "user:bob"),
        (R.CHANGE_EVENT_TYPE_REFUSED, "user:bob"),
    ]
    for event in events:  # the proto conventions: ids, times, producer, schema version
        assert event.envelope.message_id and event.envelope.correlation_id and event.envelope.producer == "risk"
        assert event.envelope.ts_event > 0 and event.envelope.ts_init > 0 and event.envelope.schema_version == 1
    assert {e.content_hash for e in events if e.change_id == change_id} == {content}
    limits = await topic(kafka_bootstrap, topic_namespace, "risk.limits.v1")
    assert [(c.actor, c.limits.max_daily_loss.value) for c in limits][:2] == [
        ("user:alice", "10000"),
        ("user:bob", "20000"),
    ]


async def test_lifting_a_halt_waits_for_a_second_officer_even_across_a_restart(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    settings = risk_settings(kafka_bootstrap, topic_namespace)
    async with running(settings) as app:
        halted = await set_state(app, R.TRADING_STATE_HALTED, "incident", ALICE)
        assert halted.outcome.applied and app.engine.trading_state == R.TRADING_STATE_HALTED  # at once
        lift = await set_state(app, R.TRADING_STATE_REDUCING, "incident over", ALICE)
        assert not lift.outcome.applied and lift.state == R.TRADING_STATE_HALTED
        assert app.engine.trading_state == R.TRADING_STATE_HALTED
    async with running(settings) as restarted:  # the request is on risk.changes.v1: it survives the restart
        [waiting] = (await restarted.ListPendingChanges(R.ListPendingChangesRequest(), CTX)).changes
        assert waiting.change_id == lift.outcome.change_id
        assert waiting.change.trading_state.state == R.TRADING_STATE_REDUCING
        approved = await approve(restarted, BOB, waiting.change_id, waiting.content_hash)
        assert approved.state == R.TRADING_STATE_REDUCING == restarted.engine.trading_state
        # A lift is bound to the state it lifts: halted again since the request, the approval is refused.
        stale = await set_state(restarted, R.TRADING_STATE_ACTIVE, "all clear", ALICE)
        await set_state(restarted, R.TRADING_STATE_HALTED, "another incident", ALICE)
        moved = await refused(approve(restarted, BOB, stale.outcome.change_id, stale.outcome.content_hash))
        assert moved.code == grpc.StatusCode.FAILED_PRECONDITION and "TRADING_STATE_HALTED" in moved.details
        assert restarted.engine.trading_state == R.TRADING_STATE_HALTED
    states = await topic(kafka_bootstrap, topic_namespace, "risk.state.v1")
    assert [(s.state, s.actor) for s in states] == [
        (R.TRADING_STATE_HALTED, "user:alice"),
        (R.TRADING_STATE_REDUCING, "user:bob"),
        (R.TRADING_STATE_HALTED, "user:alice"),
    ]


async def test_a_change_not_approved_in_time_expires(kafka_bootstrap: str, topic_namespace: str) -> None:
    settings = risk_settings(kafka_bootstrap, topic_namespace, four_eyes_window_s=1.0)
    async with running(settings) as app:
        await set_state(app, R.TRADING_STATE_HALTED, "incident", ALICE)
        lift = await set_state(app, R.TRADING_STATE_ACTIVE, "resume", ALICE)

        async def expired() -> bool:
            events = await topic(kafka_bootstrap, topic_namespace, "risk.changes.v1")
            return any(e.event_type == R.CHANGE_EVENT_TYPE_EXPIRED for e in events)

        await wait_for(expired, 15, "the expiry on risk.changes.v1")
        late = await refused(approve(app, BOB, lift.outcome.change_id, lift.outcome.content_hash))
        assert late.code == grpc.StatusCode.NOT_FOUND
        assert app.engine.trading_state == R.TRADING_STATE_HALTED
