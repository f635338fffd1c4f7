"""Limit utilisation for the limit_utilisation rule: the positions of record (oms.positions.v1) against risk's
limits (risk.limits.v1) and the day's loss against max_daily_loss (risk.equity.v1: the book P&L at the start of the
day). Subjects: `max_position_notional:<symbol>`, `max_gross_exposure`, `max_net_exposure`, `max_daily_loss`."""

from __future__ import annotations

from collections.abc import MutableMapping
from decimal import Decimal
from typing import Any

from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2

from analytics_service.rules import Observation

LIMITS = ("max_position_notional", "max_gross_exposure", "max_net_exposure", "max_daily_loss")


class LimitUse:
    def __init__(self, state: MutableMapping[str, Any]) -> None:
        self.state = state

    def on_limits(self, changed: risk_pb2.LimitsChanged) -> list[Observation]:
        limits = changed.limits
        self.state["limits"] = {name: getattr(limits, name).value for name in LIMITS}
        return self.observations(changed.envelope.ts_event)

    def on_equity(self, recorded: risk_pb2.StartOfDayEquityRecorded) -> list[Observation]:
        self.state["start_of_day_book_pnl"] = recorded.book_pnl.value or "0"
        return self.observations(recorded.envelope.ts_event)

    def on_position(self, changed: oms_pb2.PositionChanged) -> list[Observation]:
        position = changed.position
        price = position.market_price.value or position.average_entry_price.value or "0"
        self.state[f"position:{position.symbol}"] = {
            "quantity": position.quantity.value or "0",
            "price": price,
            "pnl": str(Decimal(position.realized_pnl.value or "0") + Decimal(position.unrealized_pnl.value or "0")),
        }
        return self.observations(changed.envelope.ts_event, only=position.symbol)

    def observations(self, ts_ns: int, only: str | None = None) -> list[Observation]:
        limits = self.state.get("limits")
        if not limits:
            return []
        positions = {
            key.removeprefix("position:"): value
            for key, value in list(self.state.items())
            if key.startswith("position:")
        }
        notional = {symbol: Decimal(p["quantity"]) * Decimal(p["price"]) for symbol, p in positions.items()}
        found: list[Observation] = []

        def use(subject: str, value: Decimal, limit_name: str) -> None:
            limit = Decimal(limits.get(limit_name) or "0")
            if limit > 0:
                found.append(Observation("limit_utilisation", subject, float(value / limit), ts_ns))

        for symbol, value in notional.items():
            if only is None or symbol == only:
                use(f"max_position_notional:{symbol}", abs(value), "max_position_notional")
        use("max_gross_exposure", sum((abs(v) for v in notional.values()), Decimal(0)), "max_gross_exposure")
        use("max_net_exposure", abs(sum(notional.values(), Decimal(0))), "max_net_exposure")
        if "start_of_day_book_pnl" in self.state:
            book = sum((Decimal(p["pnl"]) for p in positions.values()), Decimal(0))
            loss = Decimal(self.state["start_of_day_book_pnl"]) - book
            use("max_daily_loss", max(loss, Decimal(0)), "max_daily_loss")
        return found


def reconciliation(report: oms_pb2.ReconciliationCompleted) -> Observation:
    mismatches = len(report.mismatches) or (0 if report.matched else 1)
    return Observation("reconciliation_mismatches", "_account", float(mismatches), report.envelope.ts_event)


def drift(report: Any) -> Observation:
    """signal.monitoring.v1: the largest feature drift of a model version."""
    subject = f"{report.model_name}:{report.model_version}" if report.model_name else report.model_version
    return Observation("model_drift", subject or "unknown", float(report.max_drift), report.envelope.ts_event)
