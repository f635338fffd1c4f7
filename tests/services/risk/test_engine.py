"""The pre-trade gate: each limit denies with its reason code; approvals never break a limit."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from risk_service.config import RiskConfig
from risk_service.engine import NS, RiskEngine
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2 as R
from trading_platform.clock import SimulatedClock
from trading_platform.decimals import to_proto

NOW = 1_700_000_000_000_000_000


def engine(equity: str = "100000", **limits: object) -> RiskEngine:
    """A gate whose book is rebuilt and whose trading day started with the broker's `equity`."""
    risk = RiskEngine(RiskConfig(**limits), SimulatedClock(NOW))  # type: ignore[arg-type]
    risk.mark_ready()
    risk.start_day(risk.trading_day(NOW), Decimal(equity))
    risk.on_price("AAPL", Decimal("100"))
    return risk


def order(
    cid: str = "c1",
    quantity: str = "10",
    side: int = common_pb2.ORDER_SIDE_BUY,
    symbol: str = "AAPL",
    limit: str | None = None,
) -> R.CheckOrderRequest:
    return R.CheckOrderRequest(
        client_order_id=cid,
        symbol=symbol,
        side=side,
        quantity=to_proto(quantity),
        limit_price=to_proto(limit),
        reference_price=to_proto("100"),
    )


def test_approves_an_order_within_limits() -> None:
    verdict = engine().check(order())
    assert verdict.approved and verdict.reason_code == R.REASON_CODE_APPROVED


def test_each_limit_denies_with_its_reason() -> None:
    cases = [
        (engine(max_order_quantity=5), order(), R.REASON_CODE_MAX_ORDER_QUANTITY),
        (engine(max_order_notional=500), order(), R.REASON_CODE_MAX_ORDER_NOTIONAL),
        (engine(), order(limit="120"), R.REASON_CODE_PRICE_COLLAR),
        (engine(max_position_notional=900), order(), R.REASON_CODE_MAX_POSITION),
        (engine(restricted_symbols=["AAPL"]), order(), R.REASON_CODE_RESTRICTED_SYMBOL),
        (engine(), order(symbol="MSFT"), R.REASON_CODE_STALE_MARKET_DATA),
        (engine(), order(quantity="0"), R.REASON_CODE_INVALID_ORDER),
        (
            engine(equity="500", max_position_notional=10**6, max_order_notional=10**6),
            order(),
            R.REASON_CODE_BUYING_POWER,
        ),
    ]
    for risk, request, code in cases:
        verdict = risk.check(request)
        assert not verdict.approved and verdict.reason_code == code, (R.ReasonCode.Name(code), verdict)


def test_duplicate_client_order_id_and_rate_throttle() -> None:
    risk = engine(max_orders_per_second=2)
    assert risk.check(order("a")).approved
    assert risk.check(order("a", quantity="11")).reason_code == R.REASON_CODE_DUPLICATE_ORDER  # another order, same id
    assert risk.check(order("b")).approved
    assert risk.check(order("c")).reason_code == R.REASON_CODE_ORDER_RATE
    risk.clock.advance(1_100_000_000)  # type: ignore[attr-defined]
    assert risk.check(order("d")).approved


def test_stale_price_fails_closed() -> None:
    risk = engine(max_market_data_age_s=5)
    risk.clock.advance(6_000_000_000)  # type: ignore[attr-defined]
    assert risk.check(order()).reason_code == R.REASON_CODE_STALE_MARKET_DATA


def test_halted_denies_everything_and_reducing_only_reductions() -> None:
    risk = engine()
    risk.on_position("AAPL", Decimal(50), Decimal(100), Decimal(0))
    risk.set_state(R.TRADING_STATE_REDUCING, "test")
    assert risk.check(order("buy")).reason_code == R.REASON_CODE_REDUCING_ONLY
    assert risk.check(order("sell", side=common_pb2.ORDER_SIDE_SELL, quantity="20")).approved
    risk.set_state(R.TRADING_STATE_HALTED, "kill switch")
    assert risk.check(order("sell2", side=common_pb2.ORDER_SIDE_SELL)).reason_code == R.REASON_CODE_TRADING_HALTED


def test_daily_loss_halts_trading_by_itself() -> None:
    risk = engine(max_daily_loss=1000)
    risk.on_position("AAPL", Decimal(100), Decimal(120), Decimal(0))  # marked at 100: -2000 unrealised
    verdict = risk.check(order())
    assert verdict.reason_code == R.REASON_CODE_DAILY_LOSS
    assert risk.trading_state == R.TRADING_STATE_HALTED
    assert risk.state_changes and risk.state_changes[0][1] == R.TRADING_STATE_HALTED


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 3000), st.sampled_from([1, 2]), st.decimals("80", "120", places=2)),
        min_size=1,
        max_size=30,
    )
)
def test_an_approved_order_never_breaks_the_order_limits(orders: list[tuple[int, int, Decimal]]) -> None:
    risk = engine(max_orders_per_second=1000)
    for index, (quantity, side, limit) in enumerate(orders):
        verdict = risk.check(order(f"c{index}", str(quantity), side, limit=str(limit)))
        if verdict.approved:
            assert quantity <= risk.limits.max_order_quantity
            assert quantity * Decimal(100) <= risk.limits.max_order_notional
            assert abs(limit - 100) <= 100 * risk.limits.price_collar


def test_the_same_order_asked_again_is_checked_again_and_counted_once() -> None:
    """order-management asks again after its transaction aborted (the redelivered signal derives the same client
    order id): the same order gets a fresh verdict as things stand now, and uses no second slot of the limits."""
    risk = engine(max_orders_per_day=1)
    assert risk.check(order("a")).approved
    assert risk.check(order("a")).approved  # asked again: not a duplicate, not a second order of the day
    assert risk.check(order("b")).reason_code == R.REASON_CODE_ORDERS_PER_DAY
    risk.set_state(R.TRADING_STATE_HALTED, "drill")
    assert risk.check(order("a")).reason_code == R.REASON_CODE_TRADING_HALTED  # a halt since is not bypassed


def test_a_gate_whose_book_is_not_rebuilt_denies_every_order() -> None:
    """Hole 2: a started gate checks nothing against an empty book; it denies until the book is rebuilt."""
    risk = RiskEngine(RiskConfig(), SimulatedClock(NOW))
    risk.start_day(risk.trading_day(NOW), Decimal(100000))
    risk.on_price("AAPL", Decimal("100"))
    verdict = risk.check(order())
    assert verdict.reason_code == R.REASON_CODE_STALE_RISK_STATE and "rebuilding" in verdict.reason
    risk.mark_ready()
    assert risk.check(order()).approved


def test_a_book_rebuilt_from_the_decisions_and_positions_keeps_the_limits() -> None:
    """Hole 2: what a restarted gate folds from the bus (positions, its own approvals) holds the limits it held."""
    first = engine(max_position_notional=5000, max_orders_per_day=3)
    assert first.check(order("a", quantity="20")).approved
    decision = R.RiskDecision(
        client_order_id="a", approved=True, symbol="AAPL", side=common_pb2.ORDER_SIDE_BUY, quantity=to_proto("20")
    )
    decision.envelope.ts_event = NOW
    restarted = engine(max_position_notional=5000, max_orders_per_day=3)
    restarted.on_position("AAPL", Decimal(20), Decimal(100), Decimal(0))  # a filled earlier order of the day
    restarted.on_decision(decision)  # a working order: approved, not terminal
    assert restarted.check(order("b", quantity="11")).reason_code == R.REASON_CODE_MAX_POSITION  # 20 + 20 + 11 > 50
    assert restarted.check(order("a", quantity="21")).reason_code == R.REASON_CODE_DUPLICATE_ORDER
    assert restarted.check(order("c", quantity="10")).approved
    assert restarted.orders_today == 2
    assert restarted.check(order("d", quantity="1", side=common_pb2.ORDER_SIDE_SELL)).approved
    assert restarted.check(order("e", quantity="1", side=common_pb2.ORDER_SIDE_SELL)).reason_code == (
        R.REASON_CODE_ORDERS_PER_DAY
    )


def test_working_orders_count_against_the_position_limit_until_they_end() -> None:
    """Hole 5: two working orders that each pass the position limit cannot together break it."""
    risk = engine(max_position_notional=1500)
    assert risk.check(order("a", quantity="10")).approved  # 1,000 working
    assert risk.check(order("b", quantity="10")).reason_code == R.REASON_CODE_MAX_POSITION  # 2,000 if both fill
    risk.on_order_event("a", oms_pb2.ORDER_STATUS_CANCELED, Decimal(10), Decimal(0))  # released
    assert risk.check(order("c", quantity="10")).approved
    # A partial fill moves 4 from the working order to the position: still 10 in all.
    risk.on_position("AAPL", Decimal(4), Decimal(100), Decimal(0))
    risk.on_order_event("c", oms_pb2.ORDER_STATUS_PARTIALLY_FILLED, Decimal(10), Decimal(4))
    assert risk.check(order("d", quantity="6")).reason_code == R.REASON_CODE_MAX_POSITION
    assert risk.check(order("e", quantity="5")).approved


def test_working_orders_count_against_gross_exposure_and_buying_power() -> None:
    risk = engine(max_gross_exposure=2500, max_position_notional=10**6)
    risk.on_price("MSFT", Decimal("100"))
    assert risk.check(order("a", quantity="20")).approved
    assert risk.check(order("b", quantity="6", symbol="MSFT")).reason_code == R.REASON_CODE_GROSS_EXPOSURE
    poor = engine(equity="2500", max_position_notional=10**6, max_order_notional=10**6)
    assert poor.check(order("a", quantity="20")).approved  # 2,000 of 2,500 committed
    assert poor.check(order("b", quantity="6")).reason_code == R.REASON_CODE_BUYING_POWER


def test_reducing_counts_the_working_orders_on_the_same_side() -> None:
    """In REDUCING, sells that together would flip a long position short are not reductions."""
    risk = engine()
    risk.on_position("AAPL", Decimal(30), Decimal(100), Decimal(0))
    risk.set_state(R.TRADING_STATE_REDUCING, "test")
    assert risk.check(order("s1", quantity="20", side=common_pb2.ORDER_SIDE_SELL)).approved
    assert risk.check(order("s2", quantity="20", side=common_pb2.ORDER_SIDE_SELL)).reason_code == (
        R.REASON_CODE_REDUCING_ONLY
    )
    assert risk.check(order("s3", quantity="10", side=common_pb2.ORDER_SIDE_SELL)).approved


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 400), st.booleans(), st.booleans()), min_size=1, max_size=25))
def test_approved_working_orders_never_break_the_position_limit_together(
    orders: list[tuple[int, bool, bool]],
) -> None:
    """Whatever mix of buys and sells is approved and however they end, filling all the working buys (or all the
    working sells) never takes the position past max_position_notional."""
    limit = Decimal(20000)
    risk = engine(max_position_notional=limit, max_orders_per_second=10**6, max_order_quantity=10**6)
    for index, (quantity, buy, cancel_one) in enumerate(orders):
        side = common_pb2.ORDER_SIDE_BUY if buy else common_pb2.ORDER_SIDE_SELL
        risk.check(order(f"c{index}", str(quantity), side))
        if cancel_one and risk.working:
            risk.on_order_event(next(iter(risk.working)), oms_pb2.ORDER_STATUS_CANCELED, Decimal(0), Decimal(0))
        buys = sum((o.remaining for o in risk.working.values() if o.buy), Decimal(0))
        sells = sum((o.remaining for o in risk.working.values() if not o.buy), Decimal(0))
        assert buys * 100 <= limit and -sells * 100 <= limit


# 2026-12-02 03:00 UTC is 22:00 on 2026-12-01 in New York: the UTC day and the trading day differ.
LATE_EVENING_NY = 1_796_180_400 * NS


def test_daily_loss_is_measured_from_the_broker_equity_at_the_start_of_the_new_york_day() -> None:
    """Hole 4: the day's loss starts from the broker's equity at New York midnight, and a new day starts afresh."""
    clock = SimulatedClock(LATE_EVENING_NY)
    risk = RiskEngine(RiskConfig(max_daily_loss=1000, max_position_notional=10**6), clock)  # type: ignore[arg-type]
    risk.mark_ready()
    assert risk.trading_day(LATE_EVENING_NY) == "2026-12-01"
    risk.start_day("2026-12-01", Decimal(100000))
    risk.on_price("AAPL", Decimal("100"))
    risk.on_position("AAPL", Decimal(100), Decimal(109), Decimal(0))  # -900 today: within the limit
    assert risk.check(order("a")).approved
    clock.advance(3600 * NS)  # 04:00 UTC: still 2026-12-01 in New York, the same day
    risk.on_price("AAPL", Decimal("100"))
    assert risk.check(order("b")).approved and risk.orders_today == 2
    clock.advance(3600 * NS)  # 05:00 UTC = midnight in New York: a new trading day, its equity not yet known
    risk.on_price("AAPL", Decimal("100"))
    unknown = risk.check(order("c"))
    assert unknown.reason_code == R.REASON_CODE_STALE_RISK_STATE and "2026-12-02" in unknown.reason
    assert risk.today_without_equity() == "2026-12-02"
    risk.start_day("2026-12-02", Decimal(99100))  # the broker's equity now: yesterday's -900 is behind us
    risk.on_price("AAPL", Decimal("95"))  # -500 more today: -1,400 since yesterday, -500 today
    assert risk.check(order("c", limit="95")).approved
    assert risk.orders_today == 1  # the day's order count started again at New York midnight
    risk.on_price("AAPL", Decimal("89"))  # -1,100 today
    assert risk.check(order("d", limit="89")).reason_code == R.REASON_CODE_DAILY_LOSS
    assert risk.trading_state == R.TRADING_STATE_HALTED


def test_without_the_start_of_day_equity_every_order_is_denied() -> None:
    risk = RiskEngine(RiskConfig(), SimulatedClock(NOW))
    risk.mark_ready()
    risk.on_price("AAPL", Decimal("100"))
    assert risk.check(order()).reason_code == R.REASON_CODE_STALE_RISK_STATE
