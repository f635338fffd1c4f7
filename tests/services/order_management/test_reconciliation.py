"""Reconciliation with open orders present: positions are compared while orders rest at the broker (the fills on
them not yet reported are accounted for), the broker's open orders are compared with the book's, and a mismatch
blocks new orders, says why, and lets cancels through."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from oms_service.engine import OrderBook, PositionState
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2 as E
from trading.oms.v1 import oms_pb2 as S
from trading_platform.decimals import to_proto
from trading_platform.ids import client_order_id

TOLERANCE = Decimal("0.000001")


def book_with(*orders: tuple[str, int, str, str]) -> OrderBook:
    """A book of AAPL buy orders (client order id, status, quantity, filled), each filled part in the position."""
    book = OrderBook()
    for cid, status, quantity, filled in orders:
        order = S.Order(
            client_order_id=cid,
            symbol="AAPL",
            side=common_pb2.ORDER_SIDE_BUY,
            quantity=to_proto(quantity),
            filled_quantity=to_proto(filled),
            status=status,
        )
        book.apply(S.OrderEvent(event_type=S.ORDER_EVENT_TYPE_SUBMITTED, client_order_id=cid, order=order))
        if Decimal(filled):
            book.positions.setdefault("AAPL", PositionState("AAPL"))
            book.positions["AAPL"].fill(common_pb2.ORDER_SIDE_BUY, Decimal(filled), Decimal(100))
    return book


def at_broker(cid: str, status: str, filled: str = "0", quantity: str = "10") -> E.BrokerOrder:
    return E.BrokerOrder(
        client_order_id=cid,
        symbol="AAPL",
        side=common_pb2.ORDER_SIDE_BUY,
        quantity=to_proto(quantity),
        filled_quantity=to_proto(filled),
        status=status,
    )


def test_a_resting_order_does_not_stop_a_position_mismatch_from_being_found() -> None:
    book = book_with(("resting", S.ORDER_STATUS_ACCEPTED, "10", "0"))
    result = book.reconcile_with_orders({"AAPL": Decimal(7)}, [at_broker("resting", "new")], TOLERANCE)
    assert result.mismatches == ["AAPL: order-management has 0, the broker has 7"]
    assert (result.open_orders, result.broker_open_orders) == (1, 1) and result.pending == {}


def test_fills_the_broker_made_that_no_report_brought_yet_are_accounted_for() -> None:
    book = book_with(("working", S.ORDER_STATUS_PARTIALLY_FILLED, "10", "4"))
    result = book.reconcile_with_orders({"AAPL": Decimal(10)}, [at_broker("working", "filled", filled="10")], TOLERANCE)
    assert result.mismatches == []
    assert list(result.pending) == ["working"]  # open here, filled there: the report is on its way


def test_an_open_order_at_the_broker_the_book_does_not_know_is_a_mismatch() -> None:
    book = book_with(("known", S.ORDER_STATUS_ACCEPTED, "10", "0"))
    result = book.reconcile_with_orders({}, [at_broker("known", "accepted"), at_broker("stranger", "new")], TOLERANCE)
    assert result.mismatches == ["stranger: open at the broker (new), unknown to order-management"]


def test_orders_open_on_one_side_only_are_pending_and_absent_ones_only_when_the_list_is_complete() -> None:
    book = book_with(
        ("closed-here", S.ORDER_STATUS_CANCELED, "10", "0"),
        ("missing", S.ORDER_STATUS_ACCEPTED, "10", "0"),
    )
    result = book.reconcile_with_orders({}, [at_broker("closed-here", "new")], TOLERANCE)
    assert result.pending == {
        "closed-here": "closed-here: ORDER_STATUS_CANCELED at order-management, new at the broker",
        "missing": "missing: ORDER_STATUS_ACCEPTED at order-management, not at the broker",
    }
    cut = book.reconcile_with_orders({}, [at_broker("closed-here", "new")], TOLERANCE, orders_complete=False)
    assert list(cut.pending) == ["closed-here"]


@pytest.mark.integration
async def test_a_mismatch_with_a_resting_order_open_blocks_new_orders_says_why_and_cancels_still_go(
    oms: Any,
) -> None:
    """A resting limit order no longer switches reconciliation off: the broker holds 7 AAPL the book does not,
    and new orders are refused while the cancel of the resting order is sent; the report names the mismatch and
    counts the open orders. An open order at the broker the book does not know blocks as well, and when the broker
    agrees again trading resumes."""
    app = await oms.start(reconcile_interval_s=0.3, oms={"reconcile_grace_s": 1.0})
    manual = S.SubmitOrderRequest(
        symbol="AAPL",
        side=common_pb2.ORDER_SIDE_BUY,
        quantity=to_proto("10"),
        order_type=common_pb2.ORDER_TYPE_LIMIT,
        limit_price=to_proto("1"),
        decision_id="resting",
    )
    assert (await app.SubmitOrder(manual, None)).accepted
    cid = client_order_id("manual", "resting", "AAPL")
    await oms.report(cid, "AAPL", E.EXECUTION_REPORT_TYPE_NEW)
    oms.execution.orders = [at_broker(cid, "new")]
    await oms.until(lambda: app.book.orders[cid].status == S.ORDER_STATUS_ACCEPTED, "the order accepted")

    oms.execution.positions = {"AAPL": Decimal(7)}
    await oms.until(lambda: app.trading_blocked, "the mismatch to block trading")
    other = S.SubmitOrderRequest(
        symbol="MSFT", side=common_pb2.ORDER_SIDE_BUY, quantity=to_proto("1"), decision_id="blocked-1"
    )
    refused = await app.SubmitOrder(other, None)
    assert not refused.accepted and refused.reason_code == "RECONCILIATION_BLOCKED"
    assert (await app.CancelOrder(S.CancelOrderRequest(client_order_id=cid), None)).accepted

    async def reported() -> Any:
        found = [r for r in await oms.committed("oms.reconciliation.v1") if r.trading_blocked]
        return found[-1] if found else None

    await oms.until(reported, "a blocking reconciliation report")
    report = await reported()
    assert "AAPL: order-management has 0, the broker has 7" in report.mismatches
    assert (report.open_orders, report.broker_open_orders) == (1, 1)
    cancels = [c for c in await oms.committed("oms.commands.v1") if c.cancel_order.client_order_id == cid]
    assert len(cancels) == 1

    oms.execution.positions = {}
    await oms.until(lambda: not app.trading_blocked, "trading to resume once the broker agrees")
    oms.execution.orders = [at_broker("stranger", "new"), at_broker(cid, "new")]
    await oms.until(lambda: app.trading_blocked, "an unknown open order at the broker to block trading")
