"""The execution service against the real broker protocol (paper exchange) and the real Kafka-protocol broker:
invariant 1 (no approval, no order), 2 (ambiguous submits resolved by client order id) and 5 (stream down, no order)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from execution_service.app import ExecutionApp
from execution_service.config import ExecutionSettings
from paper_exchange.testing import RunningExchange
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher, ensure_topics, replay
from trading_platform.settings import load_settings
from trading_platform.testing.plugin import FAST_GROUP_OPTIONS

pytestmark = pytest.mark.integration
R = execution_pb2


async def wait_until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await condition() if asyncio.iscoroutinefunction(condition) else condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def submit_order(cid: str, **fields: Any) -> oms_pb2.SubmitOrder:
    """A market order to buy 3 AAPL, with fields replaced as given."""
    order = oms_pb2.SubmitOrder(
        client_order_id=cid,
        symbol="AAPL",
        side=common_pb2.ORDER_SIDE_BUY,
        quantity=to_proto("3"),
        order_type=common_pb2.ORDER_TYPE_MARKET,
        time_in_force=common_pb2.TIME_IN_FORCE_DAY,
        arrival_price=to_proto("214"),
    )
    for name, value in fields.items():
        if isinstance(value, str) and name in ("quantity", "limit_price", "stop_price", "trail_price", "trail_percent"):
            getattr(order, name).CopyFrom(to_proto(value))
        else:
            setattr(order, name, value)
    return order


async def send(
    publisher: Publisher, cid: str, approve: bool, age_s: float = 0.0, **command_fields: Any
) -> oms_pb2.OrderCommand:
    """Risk's approval of the default order (as risk writes it: id, symbol, side, quantity), then the command, made
    age_s ago, with command_fields changing the command only."""
    approved = submit_order(cid)
    if approve:
        decision = risk_pb2.RiskDecision(
            envelope=new_envelope("risk"),
            client_order_id=cid,
            approved=True,
            reason_code=risk_pb2.REASON_CODE_APPROVED,
            symbol=approved.symbol,
            side=approved.side,
            quantity=approved.quantity,
        )
        await publisher.publish("risk.decisions.v1", decision, key=cid)
        decision_id = decision.envelope.message_id
    else:
        decision_id = "never-decided"
    order = submit_order(cid, **command_fields)
    order.lineage.risk_decision_id = decision_id
    command = oms_pb2.OrderCommand(envelope=new_envelope("order-management"), submit_order=order)
    command.envelope.ts_init -= int(age_s * 1e9)
    await publisher.publish("oms.commands.v1", command, key=cid)
    return command


async def reports(bootstrap: str, namespace: str) -> dict[str, list[tuple[int, str]]]:
    found: dict[str, list[tuple[int, str]]] = {}
    async for message in replay(bootstrap, "execution.reports.v1", namespace=namespace):
        value: Any = message.value
        found.setdefault(value.client_order_id, []).append((value.report_type, value.reason))
    return found


async def reports_of(bootstrap: str, namespace: str, cid: str) -> list[execution_pb2.ExecutionReport]:
    return [
        m.value  # type: ignore[misc]
        async for m in replay(bootstrap, "execution.reports.v1", namespace=namespace)
        if m.value.client_order_id == cid  # type: ignore[attr-defined]
    ]


async def posted(paper_exchange: RunningExchange) -> list[str]:
    """The client order ids the paper exchange received, in order."""
    submissions = (await asyncio.to_thread(paper_exchange.admin, "GET", "submissions"))["submissions"]
    return [s["client_order_id"] for s in submissions]


def execution_settings(
    kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange, **execution: Any
) -> Any:
    return load_settings(
        ExecutionSettings,
        service_name="execution",
        kafka={
            "bootstrap_servers": kafka_bootstrap,
            "namespace": topic_namespace,
            **{k: v for k, v in FAST_GROUP_OPTIONS.items()},
        },
        broker={
            "base_url": paper_exchange.url,
            "api_key_id": paper_exchange.key_id,
            "api_secret_key": paper_exchange.secret_key,
        },
        execution={
            "stream_wait_s": 0.5,
            "approval_wait_s": 1.0,
            "submit_timeout_s": 3.0,
            "listen_confirm_s": 1.0,
            **execution,
        },
    )


@pytest.fixture
async def execution(kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange) -> AsyncIterator[Any]:
    """Start an ExecutionApp (settings overridden as given) and a publisher; both are stopped at the end."""
    await ensure_topics(
        kafka_bootstrap, ["oms.commands.v1", "risk.decisions.v1", "execution.reports.v1"], namespace=topic_namespace
    )
    publisher = Publisher(kafka_bootstrap, "test", namespace=topic_namespace)
    await publisher.start()
    apps: list[ExecutionApp] = []

    async def start(**execution: Any) -> tuple[ExecutionApp, Publisher]:
        app = ExecutionApp(execution_settings(kafka_bootstrap, topic_namespace, paper_exchange, **execution))
        await app.start()
        apps.append(app)
        await wait_until(lambda: app.stream_up, 10, "the trade-update stream")
        return app, publisher

    try:
        yield start
    finally:
        for app in apps:
            await app.stop()
        await publisher.stop()


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        ({"quantity": "30"}, "quantity 30, approved 3"),
        ({"side": common_pb2.ORDER_SIDE_SELL}, "side ORDER_SIDE_SELL, approved ORDER_SIDE_BUY"),
        ({"symbol": "MSFT"}, "symbol 'MSFT', approved 'AAPL'"),
    ],
)
async def test_a_command_that_differs_from_its_approval_is_refused_reported_and_never_sent(
    execution: Any,
    kafka_bootstrap: str,
    topic_namespace: str,
    paper_exchange: RunningExchange,
    changed: dict[str, Any],
    named: str,
) -> None:
    """Risk approved buying 3 AAPL under this id; a command under the same id and risk decision id for anything else
    is refused with APPROVAL_MISMATCH on execution.reports.v1 (which audit records), and the broker never sees it.
    The approved order itself, under another id, goes through."""
    _, publisher = await execution()
    await send(publisher, "differs-1", approve=True, **changed)
    await send(publisher, "same-1", approve=True)

    async def both_answered() -> bool:
        found = await reports(kafka_bootstrap, topic_namespace)
        return "differs-1" in found and R.EXECUTION_REPORT_TYPE_FILL in [t for t, _ in found.get("same-1", [])]

    await wait_until(both_answered, 20, "a refusal for the changed command and a fill for the approved one")
    [refusal] = await reports_of(kafka_bootstrap, topic_namespace, "differs-1")
    assert refusal.report_type == R.EXECUTION_REPORT_TYPE_REJECTED
    assert refusal.refusal_code == R.REFUSAL_CODE_APPROVAL_MISMATCH
    assert named in refusal.reason
    assert "differs-1" not in await posted(paper_exchange)


async def test_execution_holds_the_order_path_invariants(
    kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange
) -> None:
    settings = execution_settings(kafka_bootstrap, topic_namespace, paper_exchange)
    await ensure_topics(
        kafka_bootstrap, ["oms.commands.v1", "risk.decisions.v1", "execution.reports.v1"], namespace=topic_namespace
    )
    app = ExecutionApp(settings)
    await app.start()
    publisher = Publisher(kafka_bootstrap, "test", namespace=topic_namespace)
    await publisher.start()
    R = execution_pb2
    try:
        await wait_until(lambda: app.stream_up, 10, "the trade-update stream")
        await send(publisher, "approved-1", approve=True)
        await send(publisher, "unapproved-1", approve=False)

        async def first_two_done() -> bool:
            found = await reports(kafka_bootstrap, topic_namespace)
            return (
                R.EXECUTION_REPORT_TYPE_FILL in [t for t, _ in found.get("approved-1", [])] and "unapproved-1" in found
            )

        await wait_until(first_two_done, 20, "a fill for the approved order and a refusal for the other")
        found = await reports(kafka_bootstrap, topic_namespace)
        assert found["unapproved-1"] == [
            (R.EXECUTION_REPORT_TYPE_REJECTED, "no approved risk decision names this order")
        ]

        # Invariant 5: with the trade-update stream down, nothing is submitted.
        await asyncio.to_thread(paper_exchange.set_faults, refuse_streams=True, drop_streams=True)
        await wait_until(lambda: not app.stream_up, 10, "execution to see the stream down")
        await send(publisher, "while-down-1", approve=True)

        async def refused() -> bool:
            return "while-down-1" in await reports(kafka_bootstrap, topic_namespace)

        await wait_until(refused, 20, "the refusal while the stream is down")
        found = await reports(kafka_bootstrap, topic_namespace)
        assert found["while-down-1"] == [(R.EXECUTION_REPORT_TYPE_REJECTED, "trade-update stream is down")]

        # A half-open stream (authenticated, the subscription never confirmed) counts as down: nothing is submitted,
        # and the connection is dropped and made again until the broker confirms.
        await asyncio.to_thread(paper_exchange.set_faults, refuse_streams=False, half_open_streams=True)
        await asyncio.sleep(2.0)  # it reconnects, into a half-open connection
        assert not app.stream_up
        await send(publisher, "half-open-1", approve=True)

        async def refused_half_open() -> bool:
            return "half-open-1" in await reports(kafka_bootstrap, topic_namespace)

        await wait_until(refused_half_open, 20, "the refusal while the stream is half-open")
        found = await reports(kafka_bootstrap, topic_namespace)
        assert found["half-open-1"] == [(R.EXECUTION_REPORT_TYPE_REJECTED, "trade-update stream is down")]
        await asyncio.to_thread(paper_exchange.set_faults, half_open_streams=False)

        # Invariant 2: the response is lost, the order is found by its client order id, and it is posted once.
        await asyncio.to_thread(paper_exchange.set_faults, refuse_streams=False, lost_response_rate=1.0)
        await wait_until(lambda: app.stream_up, 15, "the stream to come back")
        await send(publisher, "lost-1", approve=True)

        async def recovered() -> bool:
            found = await reports(kafka_bootstrap, topic_namespace)
            return R.EXECUTION_REPORT_TYPE_FILL in [t for t, _ in found.get("lost-1", [])]

        await wait_until(recovered, 20, "the lost-response order to be reported filled")
        submissions = (await asyncio.to_thread(paper_exchange.admin, "GET", "submissions"))["submissions"]
        posted = [s["client_order_id"] for s in submissions]
        assert posted.count("lost-1") == 1 and posted.count("approved-1") == 1
        assert "unapproved-1" not in posted and "while-down-1" not in posted and "half-open-1" not in posted
        await app.stop()

        # A fill that happened while execution was down is reported by the next instance (regression: the catch-up
        # path once died on a logging call, so a filled order stayed ACCEPTED downstream forever).
        await asyncio.to_thread(paper_exchange.set_faults, lost_response_rate=0.0)
        from alpaca.trading.client import TradingClient
        from alpaca.trading.requests import MarketOrderRequest

        client = TradingClient(paper_exchange.key_id, paper_exchange.secret_key, url_override=paper_exchange.url)
        await asyncio.to_thread(
            client.submit_order,
            MarketOrderRequest(
                symbol="AAPL", qty=2, side="buy", time_in_force="day", client_order_id="filled-while-down"
            ),
        )
        app = ExecutionApp(settings)
        await app.start()

        async def caught_up() -> bool:
            found = await reports(kafka_bootstrap, topic_namespace)
            return R.EXECUTION_REPORT_TYPE_FILL in [t for t, _ in found.get("filled-while-down", [])]

        await wait_until(caught_up, 20, "the catch-up report of the fill nobody heard")
        again = await reports(kafka_bootstrap, topic_namespace)
        assert [t for t, _ in again["approved-1"]].count(R.EXECUTION_REPORT_TYPE_FILL) == 1  # nothing said twice
    finally:
        await publisher.stop()
        await app.stop()


async def test_the_kill_switch_on_the_trading_state_cancels_every_open_order_at_the_broker(
    kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange
) -> None:
    """Risk's HALTED with cancel_open_orders, read on risk.state.v1, makes execution cancel at the broker (risk itself
    may not write order commands); an ACTIVE change, or a HALTED one without it, cancels nothing."""
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import LimitOrderRequest

    settings = execution_settings(kafka_bootstrap, topic_namespace, paper_exchange)
    await ensure_topics(kafka_bootstrap, ["risk.state.v1"], namespace=topic_namespace)
    app = ExecutionApp(settings)
    await app.start()
    publisher = Publisher(kafka_bootstrap, "risk", namespace=topic_namespace)
    await publisher.start()
    client = TradingClient(paper_exchange.key_id, paper_exchange.secret_key, url_override=paper_exchange.url)
    try:
        await wait_until(lambda: app.stream_up, 10, "the trade-update stream")
        resting = await asyncio.to_thread(
            client.submit_order,
            LimitOrderRequest(
                symbol="AAPL", qty=1, side="buy", time_in_force="day", limit_price=1.0, client_order_id="resting-1"
            ),
        )
        await asyncio.sleep(1.0)  # the kill-switch group starts from the end: let it find its position first

        async def state(state: int, cancel: bool) -> None:
            change = risk_pb2.TradingStateChanged(
                envelope=new_envelope("risk"),
                state=state,
                reason="drill",
                actor="risk-officer",
                cancel_open_orders=cancel,
            )
            await publisher.publish("risk.state.v1", change, key="_trading_state")

        await state(risk_pb2.TRADING_STATE_HALTED, cancel=False)
        await state(risk_pb2.TRADING_STATE_ACTIVE, cancel=False)
        await asyncio.sleep(1.5)
        order = await asyncio.to_thread(client.get_order_by_id, resting.id)
        assert str(order.status.value) in ("new", "accepted"), "a halt without cancel_open_orders cancels nothing"

        await state(risk_pb2.TRADING_STATE_HALTED, cancel=True)

        async def canceled() -> bool:
            current = await asyncio.to_thread(client.get_order_by_id, resting.id)
            return str(current.status.value) == "canceled"

        await wait_until(canceled, 15, "the resting order to be canceled by the kill switch")
    finally:
        await publisher.stop()
        await app.stop()


async def test_an_ambiguous_submit_is_never_sent_again_and_is_reported_unresolved_after_its_bound(
    execution: Any, kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange
) -> None:
    """The submit gets a 5xx (it never landed) and so do the lookups; then the broker answers again, and has no such
    order. Execution keeps looking the id up and never posts it again (a request that timed out may still land);
    after resolve_timeout_s it reports REJECTED with REFUSAL_CODE_UNRESOLVED. A later command under the same id is
    not sent either."""
    _, publisher = await execution(resolve_timeout_s=4.0)
    await asyncio.to_thread(paper_exchange.set_faults, error_5xx_rate=1.0)
    try:
        await send(publisher, "ambiguous-1", approve=True)
        await asyncio.sleep(1.5)  # the submit and the first lookups fail
    finally:
        await asyncio.to_thread(paper_exchange.set_faults, error_5xx_rate=0.0)

    async def reported() -> bool:
        return bool(await reports_of(kafka_bootstrap, topic_namespace, "ambiguous-1"))

    await wait_until(reported, 20, "the unresolved submit to be reported")
    [report] = await reports_of(kafka_bootstrap, topic_namespace, "ambiguous-1")
    assert report.report_type == R.EXECUTION_REPORT_TYPE_REJECTED
    assert report.refusal_code == R.REFUSAL_CODE_UNRESOLVED and "not sent again" in report.reason
    await send(publisher, "ambiguous-1", approve=True)  # the same order asked again: still never sent
    await send(publisher, "after-1", approve=True)

    async def next_filled() -> bool:
        found = await reports(kafka_bootstrap, topic_namespace)
        return R.EXECUTION_REPORT_TYPE_FILL in [t for t, _ in found.get("after-1", [])]

    await wait_until(next_filled, 20, "the next order to go through")
    assert "ambiguous-1" not in await posted(paper_exchange)


async def test_a_submit_the_broker_rate_limited_is_posted_again_and_lands_once(
    execution: Any, kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange
) -> None:
    """A 429 is the broker refusing the request before taking it: unlike a 5xx or a timeout it did not land, so the
    order is posted again (same client order id) once the budget has room, and fills once. It is not reported
    unresolved, as it was when a 429 was taken for an ambiguous submit."""
    _, publisher = await execution(resolve_timeout_s=2.0)
    await asyncio.to_thread(paper_exchange.set_faults, rate_limit_burst=2)
    await send(publisher, "limited-1", approve=True)

    async def filled() -> bool:
        found = await reports(kafka_bootstrap, topic_namespace)
        return R.EXECUTION_REPORT_TYPE_FILL in [t for t, _ in found.get("limited-1", [])]

    await wait_until(filled, 20, "the rate-limited order to fill")
    assert (await posted(paper_exchange)).count("limited-1") == 1
    kinds = [r.report_type for r in await reports_of(kafka_bootstrap, topic_namespace, "limited-1")]
    assert R.EXECUTION_REPORT_TYPE_REJECTED not in kinds


async def test_a_command_beyond_the_brokers_budget_is_refused_as_it_turns_too_old(
    execution: Any, kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange
) -> None:
    """Submits get 2 of the 4 requests a minute: of three orders at once, two go to the broker and the third waits
    for a turn that would come a minute later. It is refused the moment it is older than its age limit (not when
    its turn comes, and never sent late), reported REJECTED with REFUSAL_CODE_COMMAND_TOO_OLD and dead-lettered."""
    _, publisher = await execution(requests_per_minute=4, reserved_requests_per_minute=2, max_command_age_s=3.0)
    started = time.monotonic()
    for cid in ("budget-1", "budget-2", "budget-3"):
        await send(publisher, cid, approve=True)

    async def answered() -> bool:
        return len(await reports(kafka_bootstrap, topic_namespace)) == 3

    await wait_until(answered, 20, "a report for each of the three orders")
    waited_s = time.monotonic() - started
    found = await reports(kafka_bootstrap, topic_namespace)
    refused = [cid for cid, kinds in found.items() if kinds[0][0] == R.EXECUTION_REPORT_TYPE_REJECTED]
    assert len(refused) == 1
    [refusal] = await reports_of(kafka_bootstrap, topic_namespace, refused[0])
    assert refusal.refusal_code == R.REFUSAL_CODE_COMMAND_TOO_OLD and "MAX_COMMAND_AGE_S=3" in refusal.reason
    assert waited_s < 15  # refused at its age limit, not at its turn a minute on
    assert sorted(await posted(paper_exchange)) == sorted(set(found) - set(refused))
    dead = [m.value async for m in replay(kafka_bootstrap, "oms.commands.v1.dlq", namespace=topic_namespace)]
    assert [d.reason_code for d in dead] == ["message_too_old"]


async def test_a_command_older_than_its_age_limit_is_refused_dead_lettered_and_never_sent(
    execution: Any, kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange
) -> None:
    """After an outage the backlog is not traded: a command made longer ago than EXECUTION__MAX_COMMAND_AGE_S is
    reported REJECTED (REFUSAL_CODE_COMMAND_TOO_OLD, so order-management's order is closed) and dead-lettered with
    the reason; a fresh one behind it goes through."""
    _, publisher = await execution(max_command_age_s=5.0)
    await send(publisher, "old-1", approve=True, age_s=60.0)
    await send(publisher, "fresh-1", approve=True)

    async def answered() -> bool:
        found = await reports(kafka_bootstrap, topic_namespace)
        return "old-1" in found and R.EXECUTION_REPORT_TYPE_FILL in [t for t, _ in found.get("fresh-1", [])]

    await wait_until(answered, 20, "a refusal for the old command and a fill for the fresh one")
    [refusal] = await reports_of(kafka_bootstrap, topic_namespace, "old-1")
    assert refusal.report_type == R.EXECUTION_REPORT_TYPE_REJECTED
    assert refusal.refusal_code == R.REFUSAL_CODE_COMMAND_TOO_OLD
    assert "EXECUTION__MAX_COMMAND_AGE_S=5" in refusal.reason
    dead = [m.value async for m in replay(kafka_bootstrap, "oms.commands.v1.dlq", namespace=topic_namespace)]
    assert [(d.reason_code, oms_pb2.OrderCommand.FromString(d.value).submit_order.client_order_id) for d in dead] == [
        ("message_too_old", "old-1")
    ]
    assert "old-1" not in await posted(paper_exchange)


async def test_each_order_type_reaches_the_broker_with_its_prices_and_time_in_force(
    execution: Any, kafka_bootstrap: str, topic_namespace: str, paper_exchange: RunningExchange
) -> None:
    """Stop, stop-limit, trailing-stop and limit orders are sent as what they are (not as market orders), with the
    command's time in force; a command whose prices do not fit its type is refused as INVALID_ORDER."""
    from alpaca.trading.client import TradingClient

    T = common_pb2
    _, publisher = await execution()
    orders = {
        "stop-1": {"order_type": T.ORDER_TYPE_STOP, "stop_price": "900", "time_in_force": T.TIME_IN_FORCE_GTC},
        "stop-limit-1": {
            "order_type": T.ORDER_TYPE_STOP_LIMIT,
            "stop_price": "900",
            "limit_price": "901",
            "time_in_force": T.TIME_IN_FORCE_DAY,
        },
        "trail-1": {
            "order_type": T.ORDER_TYPE_TRAILING_STOP,
            "trail_percent": "40",
            "time_in_force": T.TIME_IN_FORCE_GTC,
        },
        "limit-1": {"order_type": T.ORDER_TYPE_LIMIT, "limit_price": "1.5", "time_in_force": T.TIME_IN_FORCE_GTC},
    }
    for cid, fields in orders.items():
        await send(publisher, cid, approve=True, **fields)
    await send(publisher, "bad-trail-1", approve=True, order_type=T.ORDER_TYPE_TRAILING_STOP)

    async def all_answered() -> bool:
        found = await reports(kafka_bootstrap, topic_namespace)
        return all(cid in found for cid in [*orders, "bad-trail-1"])

    await wait_until(all_answered, 20, "every order accepted or refused")
    client = TradingClient(paper_exchange.key_id, paper_exchange.secret_key, url_override=paper_exchange.url)
    for cid, fields in orders.items():
        at_broker = await asyncio.to_thread(client.get_order_by_client_id, cid)
        assert (
            str(at_broker.order_type.value)
            == T.OrderType.Name(fields["order_type"]).removeprefix("ORDER_TYPE_").lower()
        )
        assert str(at_broker.time_in_force.value) == T.TimeInForce.Name(fields["time_in_force"]).split("_")[-1].lower()
        for name in ("stop_price", "limit_price", "trail_percent"):
            if name in fields:
                assert float(getattr(at_broker, name)) == float(fields[name]), (cid, name)
    [refusal] = await reports_of(kafka_bootstrap, topic_namespace, "bad-trail-1")
    assert refusal.refusal_code == R.REFUSAL_CODE_INVALID_ORDER and "trail" in refusal.reason
    assert "bad-trail-1" not in await posted(paper_exchange)
