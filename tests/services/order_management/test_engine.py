"""Orders of record: the state machine never takes an illegal step, the fold is deterministic, P&L is exact."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from oms_service.config import OmsConfig
from oms_service.engine import OPEN, TERMINAL, TRANSITIONS, IllegalTransition, OrderBook, PositionState
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2 as E
from trading.oms.v1 import oms_pb2 as S
from trading.signal.v1 import signal_pb2
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope
from trading_platform.ids import client_order_id

REPORTS = [
    E.EXECUTION_REPORT_TYPE_NEW,
    E.EXECUTION_REPORT_TYPE_PARTIAL_FILL,
    E.EXECUTION_REPORT_TYPE_FILL,
    E.EXECUTION_REPORT_TYPE_CANCELED,
    E.EXECUTION_REPORT_TYPE_EXPIRED,
    E.EXECUTION_REPORT_TYPE_REJECTED,
    E.EXECUTION_REPORT_TYPE_PENDING_CANCEL,
    E.EXECUTION_REPORT_TYPE_PENDING_NEW,
]


def submitted_book(cid: str = "co-1", quantity: str = "10") -> OrderBook:
    book = OrderBook()
    order = S.Order(
        client_order_id=cid,
        symbol="AAPL",
        side=common_pb2.ORDER_SIDE_BUY,
        quantity=to_proto(quantity),
        status=S.ORDER_STATUS_INITIALIZED,
    )
    book.apply(
        S.OrderEvent(
            envelope=new_envelope("t"), event_type=S.ORDER_EVENT_TYPE_INITIALIZED, client_order_id=cid, order=order
        )
    )
    order.status = S.ORDER_STATUS_SUBMITTED
    book.apply(
        S.OrderEvent(
            envelope=new_envelope("t"), event_type=S.ORDER_EVENT_TYPE_SUBMITTED, client_order_id=cid, order=order
        )
    )
    return book


def report(kind: int, filled: str = "0", last: str = "0", price: str = "100", fill_id: str = "") -> E.ExecutionReport:
    return E.ExecutionReport(
        envelope=new_envelope("execution"),
        report_type=kind,
        client_order_id="co-1",
        broker_order_id="b-1",
        filled_quantity=to_proto(filled),
        last_quantity=to_proto(last),
        last_price=to_proto(price),
        average_fill_price=to_proto(price),
        fill_id=fill_id,
    )


def test_fill_moves_order_and_position() -> None:
    book = submitted_book()
    for step in [
        report(E.EXECUTION_REPORT_TYPE_NEW),
        report(E.EXECUTION_REPORT_TYPE_PARTIAL_FILL, "4", "4", "100", "f1"),
        report(E.EXECUTION_REPORT_TYPE_FILL, "10", "6", "101", "f2"),
    ]:
        event = book.event_for_report(step)
        assert event is not None
        book.apply(event)
    order = book.orders["co-1"]
    assert order.status == S.ORDER_STATUS_FILLED and list(order.fill_ids) == ["f1", "f2"]
    assert order.lineage.broker_order_id == "b-1"
    position = book.positions["AAPL"]
    assert position.quantity == 10 and position.average_entry_price == Decimal("100.6")
    # A repeated fill is ignored; a status report after the terminal state is rejected and reported, not applied.
    assert book.event_for_report(report(E.EXECUTION_REPORT_TYPE_FILL, "10", "6", "101", "f2")) is None
    late = book.event_for_report(report(E.EXECUTION_REPORT_TYPE_CANCELED))
    assert late is not None and late.event_type == S.ORDER_EVENT_TYPE_TRANSITION_REJECTED
    book.apply(late)
    assert book.orders["co-1"].status == S.ORDER_STATUS_FILLED


def test_illegal_transition_raises() -> None:
    book = submitted_book()
    try:
        book.transition("co-1", S.ORDER_STATUS_INITIALIZED)
    except IllegalTransition as error:
        assert "ORDER_STATUS_SUBMITTED -> ORDER_STATUS_INITIALIZED is not allowed" in str(error)
    else:
        raise AssertionError("an illegal transition was allowed")


def test_sizing_rounds_to_lots_and_skips_small_adjustments() -> None:
    book = submitted_book()  # 10 AAPL open, not filled
    delta = book.order_delta("AAPL", 0.1, Decimal(100_000), Decimal("99.5"), Decimal(1), Decimal(1), Decimal(500))
    assert delta == Decimal(100) - 10  # floor(10,000 / 99.5) = 100, minus the 10 working
    # 4 shares at 100 is under the 500 minimum notional: not worth an order.
    assert (
        OrderBook().order_delta("AAPL", 0.004, Decimal(100_000), Decimal(100), Decimal(1), Decimal(1), Decimal(500))
        == 0
    )
    # Going flat cancels out the working buy: sell the 10 that are working.
    assert book.order_delta("AAPL", 0.0, Decimal(100_000), Decimal(100), Decimal(1), Decimal(1), Decimal(500)) == -10


def a_signal(weight: float, price: str = "100", symbol: str = "AAPL") -> signal_pb2.SignalGenerated:
    signal = signal_pb2.SignalGenerated(
        symbol=symbol,
        target_weight=weight,
        reference_price=to_proto(price),
        strategy_id="trend",
        model_version="v7",
        feature_hash="f-1",
    )
    signal.envelope.CopyFrom(new_envelope("signal"))
    return signal


def test_a_signal_becomes_the_order_that_moves_the_book_to_its_target_weight() -> None:
    book = submitted_book()  # 10 AAPL working
    signal = a_signal(0.1, price="99.5")
    order = book.order_for_signal(signal, Decimal(100_000), OmsConfig(), now_ns=7)
    assert order is not None
    assert order.client_order_id == client_order_id("trend", signal.envelope.message_id, "AAPL")
    assert (order.symbol, order.side, order.quantity.value) == ("AAPL", common_pb2.ORDER_SIDE_BUY, "90")
    assert (order.order_type, order.time_in_force) == (common_pb2.ORDER_TYPE_MARKET, common_pb2.TIME_IN_FORCE_DAY)
    assert order.status == S.ORDER_STATUS_INITIALIZED and order.created_at == 7
    assert (order.lineage.signal_id, order.lineage.strategy_id) == (signal.envelope.message_id, "trend")
    assert (order.lineage.model_version, order.lineage.feature_hash) == ("v7", "f-1")
    # Going flat sells what is working.
    flat = book.order_for_signal(a_signal(0.0), Decimal(100_000), OmsConfig())
    assert flat is not None and flat.side == common_pb2.ORDER_SIDE_SELL and flat.quantity.value == "10"


def test_no_order_for_a_signal_already_placed_too_small_or_without_equity() -> None:
    book = submitted_book()
    signal = a_signal(0.1)
    order = book.order_for_signal(signal, Decimal(100_000), OmsConfig())
    assert order is not None
    book.apply(
        S.OrderEvent(
            envelope=new_envelope("t", cause=signal),
            event_type=S.ORDER_EVENT_TYPE_INITIALIZED,
            client_order_id=order.client_order_id,
            order=order,
        )
    )
    assert book.order_for_signal(signal, Decimal(100_000), OmsConfig()) is None  # its id is in the book
    assert OrderBook().order_for_signal(a_signal(0.004), Decimal(100_000), OmsConfig()) is None  # 4 shares: too small
    assert OrderBook().order_for_signal(a_signal(0.1), Decimal(0), OmsConfig()) is None  # nothing to size with


def test_a_signal_redelivered_after_its_order_was_rejected_places_nothing() -> None:
    """Nothing is working and nothing is held, so the size alone would trade again: the signal's client order id, in
    the book, is what stops a second order; a new signal with the same target does trade."""
    book, signal = OrderBook(), a_signal(0.1)
    order = book.order_for_signal(signal, Decimal(100_000), OmsConfig())
    assert order is not None
    for kind, status in (
        (S.ORDER_EVENT_TYPE_INITIALIZED, S.ORDER_STATUS_INITIALIZED),
        (S.ORDER_EVENT_TYPE_REJECTED, S.ORDER_STATUS_REJECTED),
    ):
        order.status = status
        book.apply(
            S.OrderEvent(
                envelope=new_envelope("t"), event_type=kind, client_order_id=order.client_order_id, order=order
            )
        )
    assert book.open_quantity("AAPL") == 0 and book.position_quantity("AAPL") == 0
    assert book.order_for_signal(signal, Decimal(100_000), OmsConfig()) is None
    again = book.order_for_signal(a_signal(0.1), Decimal(100_000), OmsConfig())
    assert again is not None and again.client_order_id != order.client_order_id and again.quantity == order.quantity


class OrderLifecycle(RuleBasedStateMachine):
    """Any sequence of execution reports leaves every order in a state reachable by legal transitions."""

    def __init__(self) -> None:
        super().__init__()
        self.book = submitted_book()
        self.filled = Decimal(0)
        self.history = [S.ORDER_STATUS_SUBMITTED]

    @rule(kind=st.sampled_from(REPORTS), fill=st.integers(0, 4))
    def report_arrives(self, kind: int, fill: int) -> None:
        filled = self.filled
        fill_id = ""
        if kind in (E.EXECUTION_REPORT_TYPE_PARTIAL_FILL, E.EXECUTION_REPORT_TYPE_FILL):
            filled = min(Decimal(10), self.filled + fill)
            fill_id = f"f{filled}"
        event = self.book.event_for_report(report(kind, str(filled), str(filled - self.filled), "100", fill_id))
        if event is None:
            return
        before = self.book.orders["co-1"].status
        self.book.apply(event)
        after = self.book.orders["co-1"].status
        if event.event_type != S.ORDER_EVENT_TYPE_TRANSITION_REJECTED:
            # A fill moves the order on, or (after a terminal status) counts with the status kept.
            assert (fill_id and after == before) or after in TRANSITIONS[before]
            if fill_id:
                self.filled = filled
        else:
            assert after == before
        self.history.append(after)

    @invariant()
    def terminal_is_final(self) -> None:
        seen_terminal = False
        for status in self.history:
            if seen_terminal:
                assert status in TERMINAL
            seen_terminal = seen_terminal or status in TERMINAL
        assert self.book.position_quantity("AAPL") == self.filled
        assert self.history[-1] in TERMINAL | OPEN


TestOrderLifecycle = OrderLifecycle.TestCase
TestOrderLifecycle.settings = settings(max_examples=100, stateful_step_count=20, deadline=None)


def test_fold_twice_gives_the_same_book() -> None:
    book = submitted_book()
    events = []
    for step in [report(E.EXECUTION_REPORT_TYPE_NEW), report(E.EXECUTION_REPORT_TYPE_FILL, "10", "10", "99", "f")]:
        event = book.event_for_report(step)
        assert event is not None
        book.apply(event)
        events.append(event)
    rebuilt = submitted_book()
    for event in events:
        rebuilt.apply(event)
    assert rebuilt.orders == book.orders
    assert rebuilt.positions == book.positions


@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2]), st.integers(1, 500), st.decimals("1", "500", places=2)),
        min_size=1,
        max_size=40,
    )
)
def test_position_math_is_exact(fills: list[tuple[int, int, Decimal]]) -> None:
    position = PositionState("X")
    cash = Decimal(0)
    for side, quantity, price in fills:
        position.fill(side, Decimal(quantity), price)
        cash += -price * quantity if side == common_pb2.ORDER_SIDE_BUY else price * quantity
    mark = fills[-1][2]
    # Realised + unrealised P&L equals the cash flows plus the position marked at the last price, to the cent.
    total = position.realized_pnl + (mark - position.average_entry_price) * position.quantity
    assert abs(total - (cash + position.quantity * mark)) < Decimal("0.01") * (1 + abs(position.quantity))


def test_a_fill_of_nothing_moves_nothing() -> None:
    # Found by the stateful test: a fill report with zero quantity divided 0 by 0 in the average price.
    position = PositionState("X")
    position.fill(common_pb2.ORDER_SIDE_BUY, Decimal(0), Decimal(100))
    assert (position.quantity, position.average_entry_price) == (0, 0)


def test_zero_equity_sizes_nothing_not_even_a_sale() -> None:
    book = submitted_book()  # 10 AAPL working
    for equity in (Decimal(0), Decimal(-5_000)):
        assert book.order_delta("AAPL", 0.1, equity, Decimal(100), Decimal(1), Decimal(1), Decimal(500)) == 0
        assert book.order_delta("AAPL", -0.1, equity, Decimal(100), Decimal(1), Decimal(1), Decimal(500)) == 0


def test_a_fill_after_a_terminal_status_still_counts_once_and_the_status_stays() -> None:
    """The broker filled 4, then canceled the rest, and the cancel's report came first: the fill still moves the
    position and the filled quantity (once, by its fill id), and the order stays CANCELED."""
    book = submitted_book()
    for step in [report(E.EXECUTION_REPORT_TYPE_NEW), report(E.EXECUTION_REPORT_TYPE_CANCELED)]:
        event = book.event_for_report(step)
        assert event is not None
        book.apply(event)
    late = report(E.EXECUTION_REPORT_TYPE_PARTIAL_FILL, "4", "4", "100", "f1")
    event = book.event_for_report(late)
    assert event is not None and event.fill_id == "f1" and "status stays" in event.reason
    book.apply(event)
    assert book.event_for_report(late) is None  # the same fill again
    order = book.orders["co-1"]
    assert order.status == S.ORDER_STATUS_CANCELED and order.filled_quantity.value == "4"
    assert book.position_quantity("AAPL") == 4 and book.open_quantity("AAPL") == 0


def test_fills_out_of_order_each_count_and_the_average_is_of_the_fills() -> None:
    """The final fill (6 @ 101, cumulative 10) arrives before the partial (4 @ 100, cumulative 4)."""
    book = submitted_book()
    for step in [
        report(E.EXECUTION_REPORT_TYPE_FILL, "10", "6", "101", "f2"),
        report(E.EXECUTION_REPORT_TYPE_PARTIAL_FILL, "4", "4", "100", "f1"),
    ]:
        event = book.event_for_report(step)
        assert event is not None
        book.apply(event)
    order = book.orders["co-1"]
    assert order.status == S.ORDER_STATUS_FILLED and order.filled_quantity.value == "10"
    assert Decimal(order.average_fill_price.value) == Decimal("100.6")
    assert book.position_quantity("AAPL") == 10


def test_order_terms_name_what_an_order_type_is_missing_or_does_not_take() -> None:
    from oms_service.engine import OrderTerms

    T, D = common_pb2, Decimal
    assert OrderTerms().problem() is None
    assert OrderTerms(T.ORDER_TYPE_STOP_LIMIT, T.TIME_IN_FORCE_GTC, D(101), D(100)).problem() is None
    assert OrderTerms(T.ORDER_TYPE_TRAILING_STOP, trail_percent=D("1.5")).problem() is None
    for terms, problem in [
        (OrderTerms(T.ORDER_TYPE_LIMIT), "a ORDER_TYPE_LIMIT order needs limit_price"),
        (OrderTerms(T.ORDER_TYPE_STOP, limit_price=D(1)), "limit_price is given, but a ORDER_TYPE_STOP order takes"),
        (OrderTerms(T.ORDER_TYPE_STOP_LIMIT, stop_price=D(1)), "needs limit_price"),
        (OrderTerms(T.ORDER_TYPE_TRAILING_STOP), "needs trail_price or trail_percent (exactly one)"),
        (OrderTerms(T.ORDER_TYPE_TRAILING_STOP, trail_price=D(1), trail_percent=D(1)), "(exactly one)"),
        (OrderTerms(T.ORDER_TYPE_MARKET, stop_price=D(5)), "stop_price is given"),
        (OrderTerms(T.ORDER_TYPE_STOP, stop_price=D(-5)), "stop_price must be positive"),
        (OrderTerms(99), "order_type 99 is not an order type"),
        (OrderTerms(time_in_force=42), "time_in_force 42"),
    ]:
        assert problem in (terms.problem() or ""), (terms, terms.problem())
