"""A snapshot of the book, plus the events after it, rebuilds exactly the book the whole log rebuilds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oms_service import engine
from oms_service.engine import OrderBook
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2 as S
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope

SYMBOLS = ["AAPL", "MSFT", "IBM"]


def event(order: S.Order, kind: int, status: int, price: int, last: int = 0, fill_id: str = "") -> S.OrderEvent:
    order.status = status
    return S.OrderEvent(
        envelope=new_envelope("order-management", cause=new_envelope("signal")),
        event_type=kind,
        client_order_id=order.client_order_id,
        order=order,
        last_quantity=to_proto(str(last)),
        last_price=to_proto(str(price)),
        fill_id=fill_id,
    )


def order_events(plan: list[tuple[int, int, int, int]]) -> list[S.OrderEvent]:
    """Each order: created, submitted, then filled in `parts` pieces (or canceled when parts is 0)."""
    events = []
    for n, (symbol, side, quantity, parts) in enumerate(plan):
        cid = f"co-{n}"
        order = S.Order(
            client_order_id=cid,
            symbol=SYMBOLS[symbol],
            side=common_pb2.ORDER_SIDE_BUY if side else common_pb2.ORDER_SIDE_SELL,
            quantity=to_proto(str(quantity)),
        )
        price = 100 + n
        events.append(event(order, S.ORDER_EVENT_TYPE_INITIALIZED, S.ORDER_STATUS_INITIALIZED, price))
        events.append(event(order, S.ORDER_EVENT_TYPE_SUBMITTED, S.ORDER_STATUS_SUBMITTED, price))
        if parts == 0:
            events.append(event(order, S.ORDER_EVENT_TYPE_CANCELED, S.ORDER_STATUS_CANCELED, price))
        filled = 0
        for part in range(parts):
            last = quantity // parts if part < parts - 1 else quantity - filled
            filled += last
            order.filled_quantity.CopyFrom(to_proto(str(filled)))
            done = part == parts - 1
            events.append(
                event(
                    order,
                    S.ORDER_EVENT_TYPE_FILLED if done else S.ORDER_EVENT_TYPE_PARTIALLY_FILLED,
                    S.ORDER_STATUS_FILLED if done else S.ORDER_STATUS_PARTIALLY_FILLED,
                    price,
                    last,
                    f"{cid}-f{part}",
                )
            )
    return events


def fold(events: list[S.OrderEvent], book: OrderBook | None = None) -> OrderBook:
    book = book or OrderBook()
    for event in events:
        book.apply(event)
    return book


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(1, 50), st.integers(0, 3)), min_size=1, max_size=12
    ),
    cut=st.floats(0, 1),
)
def test_snapshot_plus_the_rest_equals_the_whole_fold(plan: list[tuple[int, int, int, int]], cut: float) -> None:
    events = order_events(plan)
    at = int(cut * len(events))
    whole = fold(events)
    snapshot = fold(events[:at]).snapshot({0: at})
    wire = S.OrderBookSnapshot.FromString(snapshot.SerializeToString())  # as it travels on the bus
    restored = fold(events[at:], OrderBook.restored(wire))
    assert restored.orders == whole.orders
    assert restored.positions == whole.positions
    assert restored.events_applied == whole.events_applied
    assert restored.handled_message_ids == whole.handled_message_ids
    assert dict(wire.event_offsets) == {0: at}


def test_a_snapshot_keeps_every_open_order_and_only_the_latest_terminal_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "SNAPSHOT_TERMINAL_ORDERS", 2)

    events = order_events([(0, 1, 10, 1), (1, 1, 10, 0), (2, 1, 10, 2), (0, 0, 5, 1)])
    book = fold(events)
    open_order = S.OrderEvent()
    open_order.CopyFrom(events[0])
    open_order.client_order_id = "co-open"
    open_order.order.client_order_id = "co-open"
    open_order.order.status = S.ORDER_STATUS_SUBMITTED
    book.apply(open_order)
    kept = [order.client_order_id for order in book.snapshot({0: len(events) + 1}).orders]
    assert kept == ["co-2", "co-3", "co-open"]  # the two latest terminal ones, and the open one
    restored = OrderBook.restored(book.snapshot({}))
    assert restored.positions == book.positions
    assert restored.position_quantity("AAPL") == Decimal(5)
