"""Every fill counts exactly once, whatever the order of arrival: the broker's trade updates of one order (fills,
then a cancel of the rest) arrive shuffled, duplicated or not at all; a catch-up (the broker's order as it now is)
comes at some point and once more at the end. Through execution's engine and order-management's book, the position
and the order's filled quantity are what the broker filled, and the order ends in the broker's final status."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from execution_service.engine import ExecutionEngine
from hypothesis import given, settings
from hypothesis import strategies as st
from oms_service.engine import OrderBook
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2 as S
from trading_platform.decimals import to_proto

QUANTITY = 10


def broker_updates(fills: list[tuple[int, str]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The trade updates of an order of 10 filled in these (quantity, price) steps, then canceled if not full; and
    the broker's order at the end."""
    filled, notional, updates = 0, Decimal(0), []

    def order(status: str) -> dict[str, Any]:
        average = notional / filled if filled else Decimal(0)
        return {
            "id": "b-1",
            "client_order_id": "co-1",
            "symbol": "AAPL",
            "side": "buy",
            "qty": str(QUANTITY),
            "filled_qty": str(filled),
            "filled_avg_price": str(average),
            "status": status,
        }

    updates.append({"event": "new", "execution_id": "", "order": order("new")})
    for number, (quantity, price) in enumerate(fills):
        filled += quantity
        notional += quantity * Decimal(price)
        event = "fill" if filled == QUANTITY else "partial_fill"
        status = "filled" if filled == QUANTITY else "partially_filled"
        updates.append(
            {"event": event, "execution_id": f"x{number}", "qty": str(quantity), "price": price, "order": order(status)}
        )
    if filled < QUANTITY:
        updates.append({"event": "canceled", "execution_id": "", "order": order("canceled")})
    return updates, order("filled" if filled == QUANTITY else "canceled")


@st.composite
def fills_and_arrivals(draw: Any) -> tuple[list[tuple[int, str]], list[int], int]:
    quantities: list[int] = []
    while sum(quantities) < QUANTITY and draw(st.booleans()):
        quantities.append(draw(st.integers(1, QUANTITY - sum(quantities))))
    prices = [draw(st.sampled_from(["99.5", "100", "100.25", "101"])) for _ in quantities]
    count = len(quantities) + 1 + (sum(quantities) < QUANTITY)
    # Which updates arrive, in what order, some twice, some never.
    arrivals = draw(st.lists(st.integers(0, count - 1), max_size=2 * count))
    catch_up_at = draw(st.integers(0, len(arrivals)))
    return list(zip(quantities, prices, strict=True)), arrivals, catch_up_at


def submitted_book() -> OrderBook:
    book = OrderBook()
    order = S.Order(
        client_order_id="co-1",
        symbol="AAPL",
        side=common_pb2.ORDER_SIDE_BUY,
        quantity=to_proto(str(QUANTITY)),
        status=S.ORDER_STATUS_SUBMITTED,
    )
    book.apply(S.OrderEvent(event_type=S.ORDER_EVENT_TYPE_SUBMITTED, client_order_id="co-1", order=order))
    return book


@settings(max_examples=300, deadline=None)
@given(fills_and_arrivals())
def test_every_fill_counts_exactly_once_whatever_the_order_of_arrival(
    case: tuple[list[tuple[int, str]], list[int], int],
) -> None:
    fills, arrivals, catch_up_at = case
    updates, final = broker_updates(fills)
    engine, book = ExecutionEngine(), submitted_book()

    def deliver(update: dict[str, Any]) -> None:
        report = engine.report_for(update, 1)
        if report is None:
            return
        engine.remember(report)  # published
        event = book.event_for_report(report)
        if event is not None:
            book.apply(event)

    def catch_up() -> None:
        for update in engine.catch_up_updates(final):
            deliver(update)

    for position, index in enumerate(arrivals):
        if position == catch_up_at:
            catch_up()
        deliver(updates[index])
    catch_up()  # the stream (re)connects

    filled = sum(quantity for quantity, _ in fills)
    order = book.orders["co-1"]
    assert book.position_quantity("AAPL") == filled
    assert Decimal(order.filled_quantity.value or 0) == filled
    assert order.status == (S.ORDER_STATUS_FILLED if filled == QUANTITY else S.ORDER_STATUS_CANCELED)
    assert book.open_quantity("AAPL") == 0
    if filled:
        notional = sum(quantity * Decimal(price) for quantity, price in fills)
        assert abs(Decimal(order.average_fill_price.value) * filled - notional) < Decimal("0.001")
