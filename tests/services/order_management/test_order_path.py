"""order-management on the order path, over the real broker: stale signals are never traded, equity is what the
broker says, manual orders keep their type, prices and time in force."""

from __future__ import annotations

from typing import Any

import pytest
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading.signal.v1 import signal_pb2
from trading_platform.decimals import to_proto
from trading_platform.ids import client_order_id

pytestmark = pytest.mark.integration
STRATEGY = "momentum"


def cid_of(signal: Any) -> str:
    return client_order_id(STRATEGY, signal.envelope.message_id, signal.symbol)


async def test_a_signal_older_than_its_age_limit_is_dead_lettered_and_never_traded(oms: Any) -> None:
    """After an outage the backlog of signals is not traded at market: one made longer ago than
    OMS__MAX_SIGNAL_AGE_S goes to signal.signals.v1.dlq with the reason, and no order comes of it; a fresh signal
    behind it is traded."""
    app = await oms.start(oms={"max_signal_age_s": 5.0})
    old = await oms.signal("AAPL", 0.05, age_s=60.0)
    fresh = await oms.signal("MSFT", 0.05)
    await oms.until(lambda: cid_of(fresh) in app.book.orders, "the fresh signal's order")

    async def dead_lettered() -> list[Any]:
        return await oms.committed("signal.signals.v1.dlq")

    await oms.until(dead_lettered, "the old signal's dead letter")
    [dead] = await dead_lettered()
    assert dead.reason_code == "message_too_old" and "OMS__MAX_SIGNAL_AGE_S=5" in dead.reason
    assert signal_pb2.SignalGenerated.FromString(dead.value).envelope.message_id == old.envelope.message_id
    assert cid_of(old) not in app.book.orders
    assert all(e.client_order_id != cid_of(old) for e in await oms.committed("oms.events.v1"))


@pytest.mark.parametrize("equity", ["0", None])
async def test_zero_equity_sizes_nothing_and_missing_equity_is_not_made_up(oms: Any, equity: str | None) -> None:
    """The broker's equity is the base of sizing: zero is a value (no order), and an account without one is not
    replaced by a default amount (no order either, and the log says why). With equity back, the next signal trades."""
    oms.execution.equity = equity
    app = await oms.start()
    assert app.equity == (None if equity is None else 0)
    skipped = await oms.signal("AAPL", 0.05)
    await oms.until(lambda: app.consumer.handled >= 1, "the signal to be handled")
    oms.execution.equity = "100000"
    await oms.until(lambda: app.equity == 100000, "the next reconciliation to read the equity")
    traded = await oms.signal("AAPL", 0.05)
    await oms.until(lambda: cid_of(traded) in app.book.orders, "the order of the signal after the equity came back")
    assert cid_of(skipped) not in app.book.orders


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"order_type": common_pb2.ORDER_TYPE_STOP, "time_in_force": common_pb2.TIME_IN_FORCE_GTC},
            {"stop_price": "250"},
        ),
        (
            {"order_type": common_pb2.ORDER_TYPE_STOP_LIMIT, "time_in_force": common_pb2.TIME_IN_FORCE_IOC},
            {"stop_price": "250", "limit_price": "251"},
        ),
        (
            {"order_type": common_pb2.ORDER_TYPE_TRAILING_STOP, "time_in_force": common_pb2.TIME_IN_FORCE_GTC},
            {"trail_percent": "2.5"},
        ),
        ({"order_type": common_pb2.ORDER_TYPE_TRAILING_STOP}, {"trail_price": "1.25"}),
    ],
)
async def test_a_manual_order_keeps_its_type_prices_and_time_in_force_on_the_way_to_execution(
    oms: Any, fields: dict[str, int], expected: dict[str, str]
) -> None:
    """Stop, stop-limit and trailing orders are not turned into market orders, nor every time in force into DAY:
    the order of record and the command execution reads carry them as asked."""
    app = await oms.start()
    request = oms_pb2.SubmitOrderRequest(
        symbol="AAPL", side=common_pb2.ORDER_SIDE_BUY, quantity=to_proto("5"), decision_id="manual-terms", **fields
    )
    for name, value in expected.items():
        getattr(request, name).CopyFrom(to_proto(value))
    response = await app.SubmitOrder(request, None)
    assert response.accepted, response.reason
    cid = client_order_id("manual", "manual-terms", "AAPL")
    [command] = [c for c in await oms.committed("oms.commands.v1") if c.submit_order.client_order_id == cid]
    for sent in (command.submit_order, app.book.orders[cid]):
        assert sent.order_type == fields["order_type"]
        assert sent.time_in_force == fields.get("time_in_force", common_pb2.TIME_IN_FORCE_DAY)
        for name in ("limit_price", "stop_price", "trail_price", "trail_percent"):
            assert getattr(sent, name).value == expected.get(name, ""), name


async def test_a_manual_order_whose_terms_do_not_fit_its_type_is_refused_naming_the_field(oms: Any) -> None:
    app = await oms.start()
    request = oms_pb2.SubmitOrderRequest(
        symbol="AAPL",
        side=common_pb2.ORDER_SIDE_BUY,
        quantity=to_proto("5"),
        order_type=common_pb2.ORDER_TYPE_STOP,
        decision_id="manual-bad",
    )
    response = await app.SubmitOrder(request, None)
    assert not response.accepted and response.reason_code == "INVALID_ORDER"
    assert "needs stop_price" in response.reason
    assert oms.risk.checked == []  # nothing was asked, nothing written
