"""The pre-trade gate's remaining rules: how a book rebuilt from the bus counts (denials, repeats, ended orders, old
decisions), prices of symbols without a fresh trade, drawdown and net exposure, and limit changes (proposed, validated,
applied). Each test asserts the verdict, the reason code or the state a user sees."""

from __future__ import annotations

from decimal import Decimal

import pytest
from risk_service.config import RiskConfig
from risk_service.engine import NS, RiskEngine, limits_to_proto
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2 as R
from trading_platform.clock import SimulatedClock
from trading_platform.decimals import from_proto, to_proto

NOW = 1_700_000_000_000_000_000
DAY = 86_400 * NS


def engine(equity: str = "100000", **limits: object) -> RiskEngine:
    """A gate whose book is rebuilt, whose trading day started with the broker's `equity`, AAPL last traded at 100."""
    risk = RiskEngine(RiskConfig(**limits), SimulatedClock(NOW))  # type: ignore[arg-type]
    risk.mark_ready()
    risk.start_day(risk.trading_day(NOW), Decimal(equity))
    risk.on_price("AAPL", Decimal("100"))
    return risk


def order(
    cid: str, quantity: str = "10", side: int = common_pb2.ORDER_SIDE_BUY, price: str = "100"
) -> R.CheckOrderRequest:
    return R.CheckOrderRequest(
        client_order_id=cid, symbol="AAPL", side=side, quantity=to_proto(quantity), reference_price=to_proto(price)
    )


def decision(cid: str, approved: bool = True, quantity: str = "10", at_ns: int = NOW) -> R.RiskDecision:
    """A decision on the bus (replayed at start or made by another instance)."""
    return R.RiskDecision(
        envelope=common_pb2.Envelope(ts_event=at_ns),
        client_order_id=cid,
        approved=approved,
        symbol="AAPL",
        side=common_pb2.ORDER_SIDE_BUY,
        quantity=to_proto(quantity),
    )


# -- the book rebuilt from the bus ------------------------------------------------------------------------------------
def test_a_replayed_denial_holds_no_quantity_and_uses_no_slot() -> None:
    risk = engine(max_orders_per_day=1, max_position_notional=1500)
    risk.on_decision(decision("denied", approved=False))
    assert risk.working == {} and risk.orders_today == 0
    assert risk.check(order("new")).approved  # the day's one slot and the position room are still free


def test_an_approval_seen_twice_on_the_bus_counts_once() -> None:
    risk = engine(max_orders_per_day=2, max_position_notional=2500)
    risk.on_decision(decision("a"))
    risk.on_decision(decision("a"))  # redelivered
    assert risk.orders_today == 1 and list(risk.working) == ["a"]
    assert risk.check(order("b", quantity="5")).approved  # 1000 working + 500 new <= 2500; the day's second slot
    assert risk.check(order("c", quantity="1")).reason_code == R.REASON_CODE_ORDERS_PER_DAY


def test_an_order_that_ended_before_its_approval_was_replayed_holds_no_quantity() -> None:
    """Topics replay in any order: the fill that ended an order may be read before the approval that started it."""
    risk = engine(max_position_notional=1500)
    risk.on_order_event("done", oms_pb2.ORDER_STATUS_FILLED, Decimal(10), Decimal(10))
    risk.on_decision(decision("done"))
    assert "done" not in risk.working
    assert risk.check(order("new")).approved  # 1000 <= 1500: the ended order's 1000 is not counted again
    assert risk.check(order("done", quantity="5")).reason_code == R.REASON_CODE_DUPLICATE_ORDER  # its id stays used


def test_an_event_for_an_order_this_gate_never_approved_changes_nothing() -> None:
    risk = engine(max_position_notional=1000)
    risk.on_order_event("elsewhere", oms_pb2.ORDER_STATUS_PARTIALLY_FILLED, Decimal(10), Decimal(4))
    assert risk.working == {}
    assert risk.check(order("new")).approved  # exactly at the limit: nothing phantom is held


def test_a_partial_fill_shrinks_a_working_sell_on_the_sell_side() -> None:
    risk = engine(max_position_notional=1000)
    risk.on_position("AAPL", Decimal(5), Decimal(100), Decimal(0))
    assert risk.check(order("s", quantity="15", side=common_pb2.ORDER_SIDE_SELL)).approved  # low bound -10 = 1000
    risk.on_order_event("s", oms_pb2.ORDER_STATUS_PARTIALLY_FILLED, Decimal(15), Decimal(5))
    risk.on_position("AAPL", Decimal(0), Decimal(0), Decimal(0))  # the 5 sold closed the long
    assert risk.working["s"].remaining == Decimal(-10)  # still a sell: 10 left, the worst case is short 10
    assert risk.check(order("s2", quantity="1", side=common_pb2.ORDER_SIDE_SELL)).reason_code == (
        R.REASON_CODE_MAX_POSITION
    )


def test_yesterdays_approvals_do_not_use_todays_order_slots() -> None:
    risk = engine(max_orders_per_day=1)
    risk.on_decision(decision("yesterday", at_ns=NOW - DAY))
    assert risk.orders_today == 0
    assert risk.check(order("today")).approved
    assert risk.check(order("another")).reason_code == R.REASON_CODE_ORDERS_PER_DAY


def test_only_approvals_of_the_last_second_count_against_the_rate() -> None:
    risk = engine(max_orders_per_second=1)
    risk.on_decision(decision("old", at_ns=NOW - 2 * NS))
    assert risk.check(order("a")).approved  # the old approval is outside the window
    fresh = engine(max_orders_per_second=1)
    fresh.on_decision(decision("just-now", at_ns=NOW))
    assert fresh.check(order("b")).reason_code == R.REASON_CODE_ORDER_RATE


# -- prices, equity and the loss limits -------------------------------------------------------------------------------
def test_a_position_without_a_trade_is_valued_at_its_entry_price() -> None:
    """MSFT has no last trade (the gate restarted): its 100 shares count at their average entry price of 100."""
    risk = engine(max_gross_exposure=10500)
    risk.on_position("MSFT", Decimal(100), Decimal(100), Decimal(0))
    verdict = risk.check(order("a"))  # 10000 held + 1000 new > 10500
    assert verdict.reason_code == R.REASON_CODE_GROSS_EXPOSURE, verdict
    assert risk.check(order("b", quantity="5")).approved  # 10000 + 500 fits


def test_equity_is_refused_until_the_days_start_is_known() -> None:
    risk = RiskEngine(RiskConfig(), SimulatedClock(NOW))
    with pytest.raises(RuntimeError, match="start-of-day equity is not known"):
        risk.equity()


def test_a_drawdown_from_the_days_peak_halts_trading() -> None:
    risk = engine(max_drawdown="0.04", max_daily_loss=50000)
    risk.on_position("AAPL", Decimal(100), Decimal(100), Decimal(0))
    risk.on_price("AAPL", Decimal(200))  # equity 110000: the day's peak
    assert risk.check(order("up", quantity="1", price="200")).approved
    risk.on_price("AAPL", Decimal(195))  # equity 109500: 0.45% below the peak
    assert risk.check(order("dip", quantity="1", price="195")).approved
    risk.on_price("AAPL", Decimal(150))  # equity 105000: 4.5% below the peak, still above the day's start
    verdict = risk.check(order("down", quantity="1", price="150"))
    assert verdict.reason_code == R.REASON_CODE_DRAWDOWN, verdict
    assert risk.trading_state == R.TRADING_STATE_HALTED
    assert [change[1] for change in risk.state_changes] == [R.TRADING_STATE_HALTED]
    assert risk.check(order("after", quantity="1", price="150")).reason_code == R.REASON_CODE_TRADING_HALTED


def test_a_reducing_order_passes_a_loss_limit_breach() -> None:
    """Over the daily loss the gate halts for new risk, but an order that shrinks the position still passes."""
    risk = engine(max_daily_loss=1000)
    risk.on_position("AAPL", Decimal(100), Decimal(120), Decimal(0))  # -2000 at 100
    verdict = risk.check(order("sell", quantity="50", side=common_pb2.ORDER_SIDE_SELL))
    assert verdict.approved, verdict
    assert risk.trading_state == R.TRADING_STATE_HALTED  # the breach still moved the state


def test_net_exposure_is_limited_on_its_own() -> None:
    risk = engine(max_net_exposure=500)
    assert risk.check(order("big")).reason_code == R.REASON_CODE_NET_EXPOSURE  # 1000 net long
    assert risk.check(order("small", quantity="5")).approved  # 500 net long


def test_a_dry_run_is_checked_but_holds_nothing() -> None:
    risk = engine(max_orders_per_day=1)
    dry = order("dry")
    dry.dry_run = True
    assert risk.check(dry).approved
    assert risk.working == {} and risk.orders_today == 0
    assert risk.check(order("real")).approved  # the day's one slot was not used by the dry run


# -- limits -----------------------------------------------------------------------------------------------------------
def test_the_limits_on_the_wire_are_the_configured_ones() -> None:
    limits = RiskConfig(max_order_quantity=7, restricted_symbols=["GME"], max_market_data_age_s=2.5)
    proto = engine().limits_proto()
    assert from_proto(proto.max_order_quantity) == Decimal(2000)  # the engine's defaults
    wire = limits_to_proto(limits)
    assert from_proto(wire.max_order_quantity) == Decimal(7)
    assert list(wire.restricted_symbols) == ["GME"] and wire.max_market_data_age_ms == 2500
    assert wire.max_orders_per_second == 50 and wire.version == "v1"


def test_a_proposed_change_touches_only_the_fields_it_sets_and_is_not_applied() -> None:
    risk = engine(restricted_symbols=["GME"])
    proposed = risk.proposed_limits(
        R.RiskLimits(
            version="v2",
            max_order_quantity=to_proto("5"),
            max_orders_per_day=3,
            restricted_symbols=["AMC", "AMC"],
            max_market_data_age_ms=1500,
        )
    )
    assert proposed.limits_version == "v2"
    assert proposed.max_order_quantity == Decimal(5) and proposed.max_orders_per_day == 3
    assert proposed.restricted_symbols == ["AMC"]  # de-duplicated
    assert proposed.max_market_data_age_s == 1.5
    assert proposed.max_order_notional == risk.limits.max_order_notional  # unset: unchanged
    assert risk.limits.max_order_quantity == Decimal(2000)  # not applied
    kept = risk.proposed_limits(R.RiskLimits(max_order_quantity=to_proto("5")))
    assert kept.restricted_symbols == ["GME"] and kept.limits_version == "v1"  # no symbols and no version asked


def test_replacing_the_symbols_with_none_lifts_every_restriction() -> None:
    risk = engine(restricted_symbols=["AAPL"])
    assert risk.check(order("before")).reason_code == R.REASON_CODE_RESTRICTED_SYMBOL
    risk.update_limits(R.RiskLimits(), replace_symbols=True)
    assert risk.limits.restricted_symbols == []
    assert risk.check(order("after")).approved


def test_an_applied_change_is_what_the_gate_checks_against() -> None:
    risk = engine()
    applied = risk.update_limits(R.RiskLimits(max_order_quantity=to_proto("5")))
    assert applied.max_order_quantity == Decimal(5) and risk.limits is applied
    assert risk.check(order("a")).reason_code == R.REASON_CODE_MAX_ORDER_QUANTITY


def test_a_bad_change_names_its_field_and_leaves_the_limits_as_they_were() -> None:
    risk = engine()
    with pytest.raises(ValueError, match="max_drawdown"):
        risk.update_limits(R.RiskLimits(max_drawdown=to_proto("1.5")))
    assert risk.limits.max_drawdown == Decimal("0.20")
    assert risk.check(order("a")).approved
