"""The pre-trade gate: each limit denies with its reason code; approvals never break a limit."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from risk_service.config import RiskConfig
from risk_service.engine import RiskEngine
from trading.common.v1 import common_pb2
from trading.risk.v1 import risk_pb2 as R
from trading_platform.clock import SimulatedClock
from trading_platform.decimals import to_proto

NOW = 1_700_000_000_000_000_000


def engine(**limits: object) -> RiskEngine:
    risk = RiskEngine(RiskConfig(**limits), SimulatedClock(NOW))  # type: ignore[arg-type]
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
            engine(initial_equity=500, max_position_notional=10**6, max_order_notional=10**6),
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
