"""Orders of record, the remaining rules: the terms a request asks for, marks and unrealised P&L, the fold's order
across partitions, reports the book cannot place (unknown orders, cancel rejections, a report without the broker's
id) and broker orders that reconciliation must ignore. Each test asserts the event, the order or the position."""

from __future__ import annotations

from decimal import Decimal

import pytest
from oms_service.engine import IllegalTransition, OrderBook, OrderTerms
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2 as E
from trading.oms.v1 import oms_pb2 as S
from trading_platform.decimals import from_proto, to_proto
from trading_platform.envelope import new_envelope

BUY, SELL = common_pb2.ORDER_SIDE_BUY, common_pb2.ORDER_SIDE_SELL


def order_event(cid: str, status: int, event_type: int, side: int = BUY, quantity: str = "10") -> S.OrderEvent:
    order = S.Order(client_order_id=cid, symbol="AAPL", side=side, quantity=to_proto(quantity), status=status)
    return S.OrderEvent(envelope=new_envelope("t"), event_type=event_type, client_order_id=cid, order=order)


def submitted_book(cid: str = "co-1") -> OrderBook:
    book = OrderBook()
    book.apply(order_event(cid, S.ORDER_STATUS_INITIALIZED, S.ORDER_EVENT_TYPE_INITIALIZED))
    book.apply(order_event(cid, S.ORDER_STATUS_SUBMITTED, S.ORDER_EVENT_TYPE_SUBMITTED))
    return book


def report(
    kind: int, cid: str = "co-1", broker_id: str = "b-1", last: str = "0", fill_id: str = ""
) -> E.ExecutionReport:
    return E.ExecutionReport(
        envelope=new_envelope("execution"),
        report_type=kind,
        client_order_id=cid,
        broker_order_id=broker_id,
        last_quantity=to_proto(last),
        last_price=to_proto("100"),
        fill_id=fill_id,
        reason="broker says so",
    )


def fill_event(cid: str, side: int, price: str, ts_init: int) -> S.OrderEvent:
    """A recorded fill of 10 AAPL, stamped with the time it was recorded."""
    return S.OrderEvent(
        envelope=common_pb2.Envelope(message_id=f"m-{cid}", ts_init=ts_init),
        event_type=S.ORDER_EVENT_TYPE_FILLED,
        client_order_id=cid,
        order=S.Order(client_order_id=cid, symbol="AAPL", side=side, status=S.ORDER_STATUS_FILLED),
        fill_id=f"f-{cid}",
        last_quantity=to_proto("10"),
        last_price=to_proto(price),
    )


# -- the terms of a request -------------------------------------------------------------------------------------------
def test_a_request_without_terms_is_a_valid_day_market_order() -> None:
    terms = OrderTerms.of(S.SubmitOrderRequest(symbol="AAPL", side=BUY, quantity=to_proto("1")))
    assert terms == OrderTerms(common_pb2.ORDER_TYPE_MARKET, common_pb2.TIME_IN_FORCE_DAY)
    assert terms.problem() is None


def test_a_request_with_terms_keeps_its_type_prices_and_time_in_force() -> None:
    terms = OrderTerms.of(
        S.SubmitOrderRequest(
            order_type=common_pb2.ORDER_TYPE_STOP_LIMIT,
            time_in_force=common_pb2.TIME_IN_FORCE_GTC,
            limit_price=to_proto("101.5"),
            stop_price=to_proto("100"),
        )
    )
    assert (terms.order_type, terms.time_in_force) == (common_pb2.ORDER_TYPE_STOP_LIMIT, common_pb2.TIME_IN_FORCE_GTC)
    assert (terms.limit_price, terms.stop_price, terms.trail_price) == (Decimal("101.5"), Decimal(100), None)
    assert terms.problem() is None


# -- positions --------------------------------------------------------------------------------------------------------
def test_a_mark_moves_the_unrealised_pnl_of_a_held_position_only() -> None:
    book = OrderBook()
    book.apply(fill_event("a", BUY, "100", 1))
    book.mark("AAPL", Decimal(112))
    book.mark("MSFT", Decimal(300))  # no position: nothing is created
    assert list(book.positions) == ["AAPL"]
    wire = book.positions["AAPL"].to_proto()
    assert from_proto(wire.quantity) == Decimal(10) and from_proto(wire.average_entry_price) == Decimal(100)
    assert from_proto(wire.market_price) == Decimal(112) and from_proto(wire.unrealized_pnl) == Decimal(120)


def test_a_flat_position_has_no_unrealised_pnl_whatever_the_mark() -> None:
    book = OrderBook()
    book.apply(fill_event("a", BUY, "100", 1))
    book.apply(fill_event("b", SELL, "105", 2))
    book.mark("AAPL", Decimal(150))
    position = book.positions["AAPL"]
    assert position.quantity == 0 and position.realized_pnl == Decimal(50)
    assert from_proto(position.to_proto().unrealized_pnl) == 0


def test_events_from_several_partitions_fold_in_the_order_they_were_recorded() -> None:
    """Buy at 100, sell at 110, buy at 120 (recorded in that order) leaves 100 realised and 10 held at 120, however
    the partitions hand the events back."""
    events = [fill_event("c", BUY, "120", 3), fill_event("b", SELL, "110", 2), fill_event("a", BUY, "100", 1)]
    book = OrderBook()
    book.apply_all(events)
    position = book.positions["AAPL"]
    assert (position.quantity, position.average_entry_price, position.realized_pnl) == (
        Decimal(10),
        Decimal(120),
        Decimal(100),
    )
    as_read = OrderBook()
    for event in events:
        as_read.apply(event)
    assert as_read.positions["AAPL"].realized_pnl != position.realized_pnl  # the order matters: hence apply_all


# -- reports ----------------------------------------------------------------------------------------------------------
def test_an_order_the_book_does_not_know_cannot_move() -> None:
    with pytest.raises(IllegalTransition, match="unknown order ghost"):
        OrderBook().transition("ghost", S.ORDER_STATUS_CANCELED)


def test_a_report_for_an_unknown_order_is_recorded_as_rejected_and_changes_no_order() -> None:
    book = submitted_book()
    event = book.event_for_report(report(E.EXECUTION_REPORT_TYPE_FILL, cid="ghost", last="5", fill_id="f1"))
    assert event is not None and event.event_type == S.ORDER_EVENT_TYPE_TRANSITION_REJECTED
    assert event.client_order_id == "ghost" and "does not know" in event.reason
    book.apply(event)
    assert set(book.orders) == {"co-1"} and book.positions == {}


def test_a_cancel_rejection_is_recorded_and_the_order_stays_as_it_was() -> None:
    book = submitted_book()
    event = book.event_for_report(report(E.EXECUTION_REPORT_TYPE_CANCEL_REJECTED))
    assert event is not None and event.event_type == S.ORDER_EVENT_TYPE_CANCEL_REJECTED
    assert event.order.status == S.ORDER_STATUS_SUBMITTED and event.reason == "broker says so"
    assert book.event_for_report(report(E.EXECUTION_REPORT_TYPE_CANCEL_REJECTED, cid="ghost")) is None  # nothing to say


def test_a_report_without_the_brokers_id_keeps_the_one_known() -> None:
    book = submitted_book()
    accepted = book.event_for_report(report(E.EXECUTION_REPORT_TYPE_NEW, broker_id="b-1"))
    assert accepted is not None and accepted.order.lineage.broker_order_id == "b-1"
    book.apply(accepted)
    filled = book.event_for_report(report(E.EXECUTION_REPORT_TYPE_FILL, broker_id="", last="10", fill_id="f1"))
    assert filled is not None and filled.event_type == S.ORDER_EVENT_TYPE_FILLED
    assert filled.order.lineage.broker_order_id == "b-1"
    assert from_proto(filled.order.filled_quantity) == Decimal(10)


# -- reconciliation ---------------------------------------------------------------------------------------------------
def test_a_closed_broker_order_the_book_never_had_is_no_mismatch_an_open_one_is() -> None:
    book = OrderBook()
    closed = E.BrokerOrder(client_order_id="old", status="filled", filled_quantity=to_proto("5"))
    result = book.reconcile_with_orders({}, [closed], Decimal(0))
    assert result.mismatches == [] and result.pending == {} and result.broker_open_orders == 0
    live = E.BrokerOrder(client_order_id="stranger", status="OrderStatus.NEW")
    result = book.reconcile_with_orders({}, [closed, live], Decimal(0))
    assert result.mismatches == ["stranger: open at the broker (OrderStatus.NEW), unknown to order-management"]
    assert result.broker_open_orders == 1
