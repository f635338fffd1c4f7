"""Four eyes, the rules alone: what loosens waits, what tightens is in force at once, approvals bind to one change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from risk_service.config import LIMIT_KEYS, RiskConfig
from risk_service.four_eyes import FourEyes, Refusal, apply_raise, content_hash, lifts, split_limits
from trading.risk.v1 import risk_pb2 as R
from trading_platform.clock import SimulatedClock

NS = 1_000_000_000


def state_change(from_state: int, state: int) -> R.ProposedChange:
    return R.ProposedChange(trading_state=R.TradingStateChange(from_state=from_state, state=state))


def test_lifting_the_state_is_a_lift_and_halting_is_not() -> None:
    assert lifts(R.TRADING_STATE_HALTED, R.TRADING_STATE_ACTIVE)
    assert lifts(R.TRADING_STATE_HALTED, R.TRADING_STATE_REDUCING)
    assert lifts(R.TRADING_STATE_REDUCING, R.TRADING_STATE_ACTIVE)
    assert not lifts(R.TRADING_STATE_ACTIVE, R.TRADING_STATE_HALTED)
    assert not lifts(R.TRADING_STATE_ACTIVE, R.TRADING_STATE_REDUCING)
    assert not lifts(R.TRADING_STATE_HALTED, R.TRADING_STATE_HALTED)


def test_a_mixed_limits_change_applies_the_tighter_part_and_holds_the_looser_part() -> None:
    current = RiskConfig(restricted_symbols=["GME", "AMC"])
    proposed = RiskConfig(
        limits_version="v2",
        max_order_quantity=Decimal(100),  # lowered: at once
        max_daily_loss=Decimal(50000),  # raised: waits
        max_orders_per_day=30000,  # raised: waits
        restricted_symbols=["AMC", "TSLA"],  # TSLA added: at once; GME removed: waits
    )
    now, raise_ = split_limits(current, proposed)
    assert now.max_order_quantity == 100 and now.max_daily_loss == current.max_daily_loss
    assert now.max_orders_per_day == current.max_orders_per_day
    assert now.restricted_symbols == ["GME", "AMC", "TSLA"] and now.limits_version == "v2"
    assert raise_ is not None
    assert raise_.raised.max_daily_loss.value == "50000" and raise_.raised.max_orders_per_day == 30000
    assert not raise_.raised.max_order_quantity.value  # not part of the raise
    assert list(raise_.unrestricted_symbols) == ["GME"]
    approved = apply_raise(now, raise_)
    assert approved.max_daily_loss == 50000 and approved.max_orders_per_day == 30000
    assert approved.max_order_quantity == 100 and approved.restricted_symbols == ["AMC", "TSLA"]


def test_an_only_tighter_change_has_nothing_to_approve() -> None:
    current = RiskConfig()
    proposed = RiskConfig(max_position_notional=Decimal(1000), restricted_symbols=["GME"], limits_version="v3")
    now, raise_ = split_limits(current, proposed)
    assert raise_ is None and now == proposed


def test_a_raise_approved_later_does_not_undo_a_tightening_made_meanwhile() -> None:
    now, raise_ = split_limits(RiskConfig(), RiskConfig(max_daily_loss=Decimal(20000)))
    assert raise_ is not None
    tightened_since = now.model_copy(update={"max_order_quantity": Decimal(10)})
    approved = apply_raise(tightened_since, raise_)
    assert approved.max_daily_loss == 20000 and approved.max_order_quantity == 10


def test_approvals_are_by_someone_else_bound_to_the_hash_single_use_and_in_time() -> None:
    clock = SimulatedClock(1_700_000_000 * NS)
    four_eyes = FourEyes(clock, window_s=60)
    change = state_change(R.TRADING_STATE_HALTED, R.TRADING_STATE_ACTIVE)
    pending = four_eyes.request(change, "user:alice", "drill over")
    assert pending.content_hash == content_hash(change) and len(pending.content_hash) == 64
    with pytest.raises(Refusal) as self_approval:
        four_eyes.approve(pending.change_id, pending.content_hash, "user:alice")
    assert self_approval.value.kind == "self_approval"
    other = content_hash(state_change(R.TRADING_STATE_HALTED, R.TRADING_STATE_REDUCING))
    with pytest.raises(Refusal) as wrong_hash:
        four_eyes.approve(pending.change_id, other, "user:bob")
    assert wrong_hash.value.kind == "hash_mismatch"
    assert four_eyes.approve(pending.change_id, pending.content_hash, "user:bob").change == change
    with pytest.raises(Refusal) as again:
        four_eyes.approve(pending.change_id, pending.content_hash, "user:carol")
    assert again.value.kind == "not_found"

    late = four_eyes.request(change, "user:alice", "later")
    clock.advance(61 * NS)
    with pytest.raises(Refusal) as expired:
        four_eyes.approve(late.change_id, late.content_hash, "user:bob")
    assert expired.value.kind == "expired" and late.change_id not in four_eyes.pending


def test_expired_changes_are_swept_and_events_fold_back_into_the_pending_list() -> None:
    clock = SimulatedClock(1_700_000_000 * NS)
    four_eyes = FourEyes(clock, window_s=10)
    first = four_eyes.request(state_change(R.TRADING_STATE_REDUCING, R.TRADING_STATE_ACTIVE), "user:alice", "a")
    clock.advance(5 * NS)
    second = four_eyes.request(state_change(R.TRADING_STATE_REDUCING, R.TRADING_STATE_ACTIVE), "user:alice", "b")
    clock.advance(6 * NS)
    assert [p.change_id for p in four_eyes.expire_due()] == [first.change_id]
    restored = FourEyes(clock, window_s=10)
    restored.restore(first.record(R.CHANGE_EVENT_TYPE_REQUESTED, "user:alice"))
    restored.restore(second.record(R.CHANGE_EVENT_TYPE_REQUESTED, "user:alice"))
    restored.restore(first.record(R.CHANGE_EVENT_TYPE_EXPIRED, "risk"))
    restored.restore(second.record(R.CHANGE_EVENT_TYPE_REFUSED, "user:alice"))  # a refusal uses nothing up
    assert [p.change_id for p in restored.waiting()] == [second.change_id]
    assert restored.approve(second.change_id, second.content_hash, "user:bob").reason == "b"


LIMIT_VALUES = {
    "max_order_quantity": st.integers(1, 10_000).map(Decimal),
    "max_position_notional": st.integers(1, 10**6).map(Decimal),
    "max_daily_loss": st.integers(1, 10**6).map(Decimal),
    "max_drawdown": st.integers(1, 99).map(lambda n: Decimal(n) / 100),
    "max_orders_per_day": st.integers(1, 50_000),
    "max_market_data_age_s": st.integers(1, 600).map(float),
    "restricted_symbols": st.lists(st.sampled_from(["AAPL", "GME", "AMC", "TSLA"]), unique=True),
}
limits_strategy = st.fixed_dictionaries({}, optional=LIMIT_VALUES).map(lambda values: RiskConfig(**values))


@settings(max_examples=300, deadline=None)
@given(limits_strategy, limits_strategy)
def test_nothing_loosens_without_an_approval_and_the_approval_gives_exactly_what_was_asked(
    current: RiskConfig, proposed: RiskConfig
) -> None:
    """What is in force at once is never looser than before, on any limit; the held raise, once approved, gives
    exactly the limits asked for."""
    now, raise_ = split_limits(current, proposed)
    for key in LIMIT_KEYS:
        assert getattr(now, key) == min(getattr(current, key), getattr(proposed, key))
    assert set(current.restricted_symbols) <= set(now.restricted_symbols)
    assert set(proposed.restricted_symbols) <= set(now.restricted_symbols)
    if raise_ is None:
        assert now == proposed
    else:
        approved = apply_raise(now, raise_)
        assert all(getattr(approved, key) == getattr(proposed, key) for key in LIMIT_KEYS)
        assert set(approved.restricted_symbols) == set(proposed.restricted_symbols)
