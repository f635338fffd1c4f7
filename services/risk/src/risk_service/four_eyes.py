"""Four eyes on dangerous changes: what loosens risk waits for a second risk officer. Pure: no I/O.

A change that raises a limit, takes a symbol off the restricted list or lifts the trading state to a less restrictive
one (HALTED -> REDUCING or ACTIVE, REDUCING -> ACTIVE) is split from the request and held as a pending change; the
rest of the request (lowered limits, added restrictions, a halt) is in force at once. A pending change is applied
only when another risk officer approves it within the window, naming its content hash (the SHA-256 of the change's
deterministic encoding, so an approval is bound to the exact change it was shown). An approval is used once: the
change is then gone. The requester can never approve their own change. What is not approved in time expires.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from trading.risk.v1 import risk_pb2
from trading_platform.clock import Clock
from trading_platform.decimals import to_proto
from trading_platform.ids import new_message_id

from risk_service.config import LIMIT_KEYS, RiskConfig

R = risk_pb2
NS = 1_000_000_000
# How restrictive each state is: a move down this order is a lift and needs a second officer.
RESTRICTIVENESS = {R.TRADING_STATE_ACTIVE: 0, R.TRADING_STATE_REDUCING: 1, R.TRADING_STATE_HALTED: 2}


class Refusal(Exception):
    """An approval that cannot be given. `kind`: not_found, self_approval, hash_mismatch, expired, state_moved."""

    def __init__(self, kind: str, message: str, pending: PendingChange | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.pending = pending  # the change refused, when known


@dataclass
class PendingChange:
    change_id: str
    change: risk_pb2.ProposedChange
    content_hash: str
    requested_by: str
    reason: str
    requested_at: int
    expires_at: int

    def record(self, event_type: int, actor: str, reason: str | None = None) -> risk_pb2.RiskChangeRecorded:
        """The event of this change on risk.changes.v1 (the envelope is added by the caller)."""
        return R.RiskChangeRecorded(
            change_id=self.change_id,
            event_type=event_type,
            change=self.change,
            content_hash=self.content_hash,
            actor=actor,
            requested_by=self.requested_by,
            reason=self.reason if reason is None else reason,
            requested_at=self.requested_at,
            expires_at=self.expires_at,
        )


def content_hash(change: risk_pb2.ProposedChange) -> str:
    return hashlib.sha256(change.SerializeToString(deterministic=True)).hexdigest()


def lifts(current: int, state: int) -> bool:
    """Whether moving from `current` to `state` makes trading less restricted."""
    return RESTRICTIVENESS[state] < RESTRICTIVENESS[current]


def _set_limit(limits: risk_pb2.RiskLimits, key: str, value: object) -> None:
    if key == "max_market_data_age_s":
        limits.max_market_data_age_ms = int(float(value) * 1000)  # type: ignore[arg-type]
    elif isinstance(value, int):
        setattr(limits, key, value)
    else:
        getattr(limits, key).CopyFrom(to_proto(value))  # type: ignore[arg-type]


def split_limits(current: RiskConfig, proposed: RiskConfig) -> tuple[RiskConfig, risk_pb2.LimitsRaise | None]:
    """The part of `proposed` in force at once (everything at least as tight as `current`) and the raise that
    waits for a second officer (None when nothing loosens)."""
    now = proposed.model_dump()
    raised = R.RiskLimits()
    loosened = False
    for key in LIMIT_KEYS:
        if getattr(proposed, key) > getattr(current, key):
            now[key] = getattr(current, key)
            _set_limit(raised, key, getattr(proposed, key))
            loosened = True
    removed = [s for s in current.restricted_symbols if s not in proposed.restricted_symbols]
    if removed:
        now["restricted_symbols"] = list(dict.fromkeys([*current.restricted_symbols, *proposed.restricted_symbols]))
    if not loosened and not removed:
        return proposed, None
    tighter = any(getattr(proposed, key) < getattr(current, key) for key in LIMIT_KEYS) or bool(
        set(proposed.restricted_symbols) - set(current.restricted_symbols)
    )
    now["limits_version"] = proposed.limits_version if tighter else current.limits_version
    pending = R.LimitsRaise(raised=raised, unrestricted_symbols=removed, version=proposed.limits_version)
    return RiskConfig.model_validate(now), pending


def apply_raise(current: RiskConfig, raise_: risk_pb2.LimitsRaise) -> RiskConfig:
    """The limits once an approved raise is applied on top of `current`."""
    values = current.model_dump()
    raised = raise_.raised
    for key in LIMIT_KEYS:
        if key == "max_market_data_age_s":
            if raised.max_market_data_age_ms:
                values[key] = raised.max_market_data_age_ms / 1000
        elif isinstance(values[key], int):
            if getattr(raised, key):
                values[key] = getattr(raised, key)
        elif getattr(raised, key).value:
            values[key] = getattr(raised, key).value
    values["restricted_symbols"] = [s for s in current.restricted_symbols if s not in raise_.unrestricted_symbols]
    values["limits_version"] = raise_.version or current.limits_version
    return RiskConfig.model_validate(values)


@dataclass
class FourEyes:
    clock: Clock
    window_s: float
    pending: dict[str, PendingChange] = field(default_factory=dict)

    def request(self, change: risk_pb2.ProposedChange, requested_by: str, reason: str) -> PendingChange:
        now = self.clock.now_ns()
        pending = PendingChange(
            new_message_id(), change, content_hash(change), requested_by, reason, now, now + int(self.window_s * NS)
        )
        self.pending[pending.change_id] = pending
        return pending

    def approve(self, change_id: str, hash_: str, approver: str) -> PendingChange:
        """The change to apply, taken out (single use); raises Refusal. An expired change is taken out too and its
        Refusal is `expired` (the caller records the expiry)."""
        pending = self.pending.get(change_id)
        if pending is None:
            raise Refusal("not_found", f"no pending change {change_id} (already approved, expired or never requested)")
        if pending.requested_by == approver:
            raise Refusal(
                "self_approval", f"{approver} requested change {change_id}: a second risk officer approves", pending
            )
        if hash_ != pending.content_hash:
            raise Refusal("hash_mismatch", f"content hash {hash_!r} is not the hash of change {change_id}", pending)
        del self.pending[change_id]
        if self.clock.now_ns() > pending.expires_at:
            raise Refusal("expired", f"change {change_id} expired (not approved within {self.window_s:g} s)", pending)
        return pending

    def expire_due(self) -> list[PendingChange]:
        now = self.clock.now_ns()
        due = [p for p in self.pending.values() if now > p.expires_at]
        for pending in due:
            del self.pending[pending.change_id]
        return due

    def restore(self, event: risk_pb2.RiskChangeRecorded) -> None:
        """Fold an event of risk.changes.v1 (a start, or another instance): requests wait, the rest end them."""
        if event.event_type == R.CHANGE_EVENT_TYPE_REQUESTED:
            self.pending[event.change_id] = PendingChange(
                event.change_id,
                event.change,
                event.content_hash,
                event.requested_by,
                event.reason,
                event.requested_at,
                event.expires_at,
            )
        elif event.event_type in (R.CHANGE_EVENT_TYPE_APPROVED, R.CHANGE_EVENT_TYPE_EXPIRED):
            self.pending.pop(event.change_id, None)

    def waiting(self) -> list[PendingChange]:
        return sorted(self.pending.values(), key=lambda p: p.requested_at)
