"""Transaction-cost analysis per symbol and window (analytics.execution.v1), from signal.signals.v1 (decision time
and price), oms.events.v1 (the order's life of record), execution.reports.v1 (the broker's reasons) and
execution.quality.v1 (execution's own measure of each order).

An order counts in the windows of its terminal event (filled, rejected, canceled, expired): its outcome, fill
ratio, latencies (decision -> submit, submit -> accept, submit -> first fill), arrival slippage (execution's
measure: positive = worse than the arrival price for the side) and implementation shortfall against the decision
price (the signal's reference price): the filled part at its average price, the unfilled part at the last price
seen for the symbol (its opportunity cost). A measure that arrives after the terminal event is added to the same
windows. Each change of a row is returned, so the app publishes the row's latest value; the per-order values are
returned as observations for the alert rules.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from trading.analytics.v1 import analytics_pb2
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.oms.v1 import oms_pb2
from trading.signal.v1 import signal_pb2
from trading_platform.decimals import from_proto, to_proto
from trading_platform.envelope import new_envelope

from analytics_service.rules import Observation
from analytics_service.windows import ALL, Windows

E = oms_pb2
TERMINAL = {
    E.ORDER_EVENT_TYPE_FILLED: "filled",
    E.ORDER_EVENT_TYPE_REJECTED: "rejected",
    E.ORDER_EVENT_TYPE_CANCELED: "canceled",
    E.ORDER_EVENT_TYPE_EXPIRED: "canceled",
}
FILLS = (E.ORDER_EVENT_TYPE_PARTIALLY_FILLED, E.ORDER_EVENT_TYPE_FILLED)
SIDE = {common_pb2.ORDER_SIDE_BUY: 1, common_pb2.ORDER_SIDE_SELL: -1}
MS = 1e6
# A decision becomes an order within milliseconds (order-management sizes it as it arrives); one not linked to an
# order within this long never will be, so the signals table keeps only the last few minutes of decisions.
DECISION_KEEP_S = 600
# Latency percentiles of a window are over its latest this many orders: a row (and its changelog record) stays
# bounded however many orders a day window sees; means and counts are exact.
LATENCY_SAMPLES = 1000


@dataclass
class Changes:
    rows: list[str] = field(default_factory=list)  # keys of rows whose value changed
    observations: list[Observation] = field(default_factory=list)


def _empty_row(symbol: str, start: int, end: int) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "window_start": start,
        "window_end": end,
        "orders": 0,
        "filled": 0,
        "rejected": 0,
        "canceled": 0,
        "rejects_by_reason": {},
        "cancels_by_reason": {},
        "slippage": [0.0, 0],  # [sum, count]: means are kept as running sums
        "shortfall": [0.0, 0],
        "fill_ratio": [0.0, 0],
        "decision_to_submit": [],  # the latencies of the window's latest LATENCY_SAMPLES orders, for percentiles
        "submit_to_accept": [],
        "submit_to_fill": [],
        "filled_notional": "0",
    }


def _bps(price: Decimal, reference: Decimal, side: int) -> float:
    return float((price - reference) / reference * 10_000 * side)


class Tca:
    """The TCA fold over three tables: orders in flight (by client order id), signals (by signal id) and the
    window rows (by `<symbol>|<window_start>`)."""

    def __init__(
        self,
        rows: MutableMapping[str, Any],
        orders: MutableMapping[str, Any],
        signals: MutableMapping[str, Any],
        windows: Windows,
    ) -> None:
        self.rows, self.orders, self.signals, self.windows = rows, orders, signals, windows
        self.last_price: dict[str, str] = {}  # symbol -> last fill or bar price (opportunity cost of the unfilled)

    def on_signal(self, signal: signal_pb2.SignalGenerated) -> Changes:
        if not signal.shadow:
            self.signals[signal.envelope.message_id] = {
                "ts": signal.envelope.ts_event,
                "price": signal.reference_price.value,
            }
        return Changes()

    def on_price(self, symbol: str, price: Decimal) -> None:
        self.last_price[symbol] = str(price)

    def on_order_event(self, event: oms_pb2.OrderEvent) -> Changes:
        order_id = event.client_order_id or event.order.client_order_id
        order = dict(self.orders.get(order_id) or {"symbol": event.order.symbol})
        ts = event.envelope.ts_event
        if event.order.symbol:
            order["symbol"] = event.order.symbol
            order["side"] = SIDE.get(event.order.side, 0)
            order["quantity"] = event.order.quantity.value or order.get("quantity", "0")
        signal_id = event.order.lineage.signal_id
        if signal_id and "decision_ts" not in order and signal_id in self.signals:
            signal = self.signals[signal_id]
            order["decision_ts"], order["decision_price"] = signal["ts"], signal["price"]
        kind = event.event_type
        if kind == E.ORDER_EVENT_TYPE_SUBMITTED:
            order.setdefault("submit_ts", ts)
        elif kind == E.ORDER_EVENT_TYPE_ACCEPTED:
            order.setdefault("accept_ts", ts)
        if kind in FILLS:
            order.setdefault("first_fill_ts", ts)
            order["filled_quantity"] = event.order.filled_quantity.value or "0"
            order["average_price"] = event.order.average_fill_price.value or "0"
            if event.last_price.value:
                self.last_price[order["symbol"]] = event.last_price.value
        changes = Changes()
        if kind in TERMINAL and "done" not in order:
            order["done"] = TERMINAL[kind]
            order["reason"] = order.get("reason") or event.reason or event.order.reason or "unspecified"
            order["filled_quantity"] = event.order.filled_quantity.value or order.get("filled_quantity", "0")
            order["average_price"] = event.order.average_fill_price.value or order.get("average_price", "0")
            order["windows"] = [
                span.key(subject) for span in self.windows.spans(ts) for subject in self._subjects(order)
            ]
            self._count_terminal(order, ts, changes)
        if kind == E.ORDER_EVENT_TYPE_DENIED:  # never sent: risk's denials are served from risk.decisions.v1
            self.orders.pop(order_id, None)
            return changes
        order["ts"] = ts
        self.orders[order_id] = order
        return changes

    def on_report(self, report: execution_pb2.ExecutionReport) -> Changes:
        """The broker's reason for a rejection or cancel, which the order event may not carry."""
        if report.report_type in (
            execution_pb2.EXECUTION_REPORT_TYPE_REJECTED,
            execution_pb2.EXECUTION_REPORT_TYPE_CANCELED,
        ):
            order = dict(self.orders.get(report.client_order_id) or {"symbol": report.symbol})
            if "done" not in order:
                code = report.refusal_code
                order["reason"] = (
                    execution_pb2.RefusalCode.Name(code).removeprefix("REFUSAL_CODE_").lower()
                    if code
                    else report.reason or "unspecified"
                )
                order["ts"] = report.envelope.ts_event
                self.orders[report.client_order_id] = order
        if report.last_price.value:
            self.last_price[report.symbol] = report.last_price.value
        return Changes()

    def on_quality(self, quality: execution_pb2.ExecutionQualityMeasured) -> Changes:
        order = dict(self.orders.get(quality.client_order_id) or {"symbol": quality.symbol})
        order["quality"] = {
            "slippage": quality.slippage_bps,
            "accept_ms": quality.submit_to_accept_ns / MS if quality.submit_to_accept_ns else None,
            "fill_ms": quality.submit_to_first_fill_ns / MS if quality.submit_to_first_fill_ns else None,
            "filled": quality.fill_ratio > 0,
        }
        changes = Changes()
        if "done" in order and not order.get("measured"):  # measured after the terminal event: add it now
            self._add_measure(order, order["windows"], quality.envelope.ts_event, changes)
            changes.observations.append(
                Observation("arrival_slippage_bps", order["symbol"], quality.slippage_bps, quality.envelope.ts_event)
            )
        order["ts"] = quality.envelope.ts_event
        self.orders[quality.client_order_id] = order
        return changes

    def _subjects(self, order: dict[str, Any]) -> list[str]:
        return [order["symbol"], ALL] if order.get("symbol") else [ALL]

    def _count_terminal(self, order: dict[str, Any], ts: int, changes: Changes) -> None:
        outcome = order["done"]
        quantity = Decimal(order.get("quantity") or "0")
        filled = Decimal(order.get("filled_quantity") or "0")
        average = Decimal(order.get("average_price") or "0")
        fill_ratio = float(filled / quantity) if quantity else 0.0
        for span in self.windows.spans(ts):
            for subject in self._subjects(order):
                key = span.key(subject)
                row = self.rows.get(key) or _empty_row(subject, span.start_ns, span.end_ns)
                row = {**row}
                row["orders"] += 1
                if outcome == "filled":
                    row["filled"] += 1
                elif outcome == "rejected":
                    row["rejected"] += 1
                    reasons = dict(row["rejects_by_reason"])
                    reasons[order["reason"]] = reasons.get(order["reason"], 0) + 1
                    row["rejects_by_reason"] = reasons
                else:
                    row["canceled"] += 1
                    reasons = dict(row["cancels_by_reason"])
                    reasons[order["reason"]] = reasons.get(order["reason"], 0) + 1
                    row["cancels_by_reason"] = reasons
                row["fill_ratio"] = _added(row["fill_ratio"], fill_ratio)
                row["filled_notional"] = str(Decimal(row["filled_notional"]) + filled * average)
                if "decision_ts" in order and "submit_ts" in order:
                    ms = max(0, order["submit_ts"] - order["decision_ts"]) / MS
                    row["decision_to_submit"] = _sampled(row["decision_to_submit"], ms)
                shortfall = self._shortfall(order, quantity, filled, average)
                if shortfall is not None:
                    row["shortfall"] = _added(row["shortfall"], shortfall)
                self.rows[key] = row
                changes.rows.append(key)
        symbol = order.get("symbol") or ALL
        changes.observations += [
            Observation("fill_ratio", symbol, fill_ratio, ts),
            Observation("reject_rate", symbol, 1.0 if outcome == "rejected" else 0.0, ts),
        ]
        if "quality" in order:
            self._add_measure(order, order["windows"], ts, changes)
            changes.observations.append(Observation("arrival_slippage_bps", symbol, order["quality"]["slippage"], ts))

    def _shortfall(self, order: dict[str, Any], quantity: Decimal, filled: Decimal, average: Decimal) -> float | None:
        side = order.get("side", 0)
        decision = Decimal(order.get("decision_price") or "0")
        if not side or not decision or not quantity:
            return None
        cost = Decimal(0)
        if filled:
            cost += (average - decision) * filled
        unfilled = quantity - filled
        last = Decimal(self.last_price.get(order["symbol"], "0") or "0")
        if unfilled > 0 and last:
            cost += (last - decision) * unfilled
        return float(cost / (decision * quantity) * 10_000 * side)

    def _add_measure(self, order: dict[str, Any], keys: list[str], ts: int, changes: Changes) -> None:
        order["measured"] = True
        quality = order["quality"]
        for key in keys:
            row = self.rows.get(key)
            if row is None:
                continue
            row = {**row}
            if quality["filled"]:
                row["slippage"] = _added(row["slippage"], quality["slippage"])
            if quality["accept_ms"] is not None:
                row["submit_to_accept"] = _sampled(row["submit_to_accept"], quality["accept_ms"])
            if quality["fill_ms"] is not None:
                row["submit_to_fill"] = _sampled(row["submit_to_fill"], quality["fill_ms"])
            self.rows[key] = row
            if key not in changes.rows:
                changes.rows.append(key)

    def forget(self, now_ns: int) -> int:
        """Drop orders that ended and were measured (their rows hold what they contributed) and any order not heard
        of for the tables' keep time (orders never measured); signals after DECISION_KEEP_S."""
        horizon = now_ns - self.windows.keep_s * 1_000_000_000
        gone = [
            key
            for key, order in list(self.orders.items())
            if (order.get("done") and order.get("measured")) or order.get("ts", now_ns) < horizon
        ]
        for key in gone:
            del self.orders[key]
        decisions = now_ns - DECISION_KEEP_S * 1_000_000_000
        old_signals = [key for key, signal in list(self.signals.items()) if signal["ts"] < decisions]
        for key in old_signals:
            del self.signals[key]
        return len(gone) + len(old_signals)


def _added(total: list[float], value: float) -> list[float]:
    return [total[0] + value, total[1] + 1]


def _sampled(samples: list[float], value: float) -> list[float]:
    return [*samples[-(LATENCY_SAMPLES - 1) :], value]


def _mean(total: list[float]) -> float:
    return total[0] / total[1] if total[1] else 0.0


def _percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99, interpolated linearly between the closest ranks (numpy's default method), from one sort."""
    if not values:
        return 0.0, 0.0
    ordered = sorted(values)
    last = len(ordered) - 1

    def at(q: float) -> float:
        position = last * q
        low = int(position)
        high = min(low + 1, last)
        return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))

    return at(0.50), at(0.99)


def row_message(row: dict[str, Any]) -> analytics_pb2.ExecutionQualityWindow:
    orders = row["orders"]
    decision_p50, decision_p99 = _percentiles(row["decision_to_submit"])
    accept_p50, accept_p99 = _percentiles(row["submit_to_accept"])
    fill_p50, fill_p99 = _percentiles(row["submit_to_fill"])
    return analytics_pb2.ExecutionQualityWindow(
        envelope=new_envelope("analytics", ts_event=row["window_start"]),
        symbol=row["symbol"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        orders=orders,
        filled_orders=row["filled"],
        rejected_orders=row["rejected"],
        canceled_orders=row["canceled"],
        arrival_slippage_bps=_mean(row["slippage"]),
        implementation_shortfall_bps=_mean(row["shortfall"]),
        fill_ratio=_mean(row["fill_ratio"]),
        reject_rate=row["rejected"] / orders if orders else 0.0,
        cancel_rate=row["canceled"] / orders if orders else 0.0,
        rejects_by_reason=row["rejects_by_reason"],
        cancels_by_reason=row["cancels_by_reason"],
        decision_to_submit_p50_ms=decision_p50,
        decision_to_submit_p99_ms=decision_p99,
        submit_to_accept_p50_ms=accept_p50,
        submit_to_accept_p99_ms=accept_p99,
        submit_to_fill_p50_ms=fill_p50,
        submit_to_fill_p99_ms=fill_p99,
        filled_notional=to_proto(from_proto(common_pb2.Decimal(value=row["filled_notional"]))),
    )
