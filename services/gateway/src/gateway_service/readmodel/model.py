"""The gateway's read model: the bus folded into in-memory tables the REST reads and the live stream serve.

`ReadModel.apply(message)` folds one consumed record (trading_platform.messaging.ConsumedMessage) into the tables and
returns the updates it makes, as `(channel, data)`: `data` is the same JSON the REST read returns for that item
(readmodel.convert), so the stream and the routes never disagree. Nothing here reads the bus or answers HTTP
(readmodel.feed consumes, routes/api_*.py serve).

What is kept (each bounded by `Caps`; the oldest row is evicted first, see readmodel.tables):
- orders by client order id and creation time (the latest `Order` of oms.events.v1), each with its events, fills
  and broker reports (`events_per_order` at most), joined at read time with its signal (signal.signals.v1 by the
  lineage's signal id), its risk decision (risk.decisions.v1) and its execution quality (execution.quality.v1);
- positions by symbol (oms.positions.v1, compacted: every symbol's latest), the equity curve (risk.equity.v1's
  start-of-day equity, then one point per position change: start-of-day equity + the book's P&L change since);
- the trading state, the limits, four-eyes changes, denials (risk.decisions.v1 not approved) and breaches
  (risk.alerts.v1);
- the analytics tables by record key (analytics.execution/pnl/quality/deadletters/alerts.v1), model changes, prediction
  monitoring and live/shadow agreement (signal.*), deployments, the broker connection, reconciliation, audit
  verification.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf.message import Message
from trading_platform.messaging import ConsumedMessage

from gateway_service.readmodel.convert import enum_name, rfc3339, to_json
from gateway_service.readmodel.tables import Series, Table

Json = dict[str, Any]
Update = tuple[str, Json]
EXCHANGE_TZ = ZoneInfo("America/New_York")

# Where each topic's updates go on the live stream (GET /api/v1/stream?topics=...).
CHANNELS = (
    "orders",
    "fills",
    "positions",
    "equity",
    "risk",
    "risk_changes",
    "decisions",
    "breaches",
    "alerts",
    "quality",
    "execution",
    "execution_orders",
    "pnl",
    "deadletters",
    "signals",
    "models",
    "deployments",
    "broker",
    "reconciliation",
    "audit",
)
# What the read model folds. State (compacted) topics and the small forever ones are read from their beginning;
# the event topics (RECENT) from `Caps.history_s` ago.
FULL = (
    "oms.positions.v1",
    "risk.state.v1",
    "risk.limits.v1",
    "risk.equity.v1",
    "signal.models.v1",
    "execution.status.v1",
    "platform.deployments.v1",
    "analytics.execution.v1",
    "analytics.pnl.v1",
    "analytics.quality.v1",
    "analytics.deadletters.v1",
    "analytics.alerts.v1",
)
RECENT = (
    "oms.events.v1",
    "oms.reconciliation.v1",
    "risk.decisions.v1",
    "risk.changes.v1",
    "risk.alerts.v1",
    "execution.reports.v1",
    "execution.quality.v1",
    "signal.signals.v1",
    "signal.shadow.v1",
    "signal.monitoring.v1",
    "audit.verifications.v1",
)
TOPICS = FULL + RECENT


@dataclass(frozen=True)
class Caps:
    """How much the read model keeps (TRADING_GATEWAY__READMODEL_*): past a cap the oldest row is evicted."""

    orders: int = 50_000
    events_per_order: int = 50
    signals: int = 50_000
    rows: int = 20_000  # each analytics table, decisions, execution quality per order, changes, deployments
    points: int = 20_000  # each series: equity, denials, breaches
    history_s: int = 7 * 24 * 3600


def _dec(text: str | None) -> Decimal:
    try:
        return Decimal(text) if text else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _plain(value: Decimal) -> str:
    return format(value.normalize() if value != 0 else Decimal(0), "f")


def ts_of(message: Message) -> int:
    return int(message.envelope.ts_event)  # type: ignore[attr-defined]


def trading_day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).astimezone(EXCHANGE_TZ).date().isoformat()


class ReadModel:
    def __init__(self, caps: Caps | None = None, clock_ns: Callable[[], int] | None = None) -> None:
        self.caps = caps = caps or Caps()
        self.clock_ns = clock_ns or (lambda: int(datetime.now(UTC).timestamp() * 1e9))
        # orders and what is joined to them
        self.orders: Table[Json] = Table(caps.orders, on_evict=self._forget_order)
        self.order_events: dict[str, list[Json]] = {}
        self.fills: dict[str, list[Json]] = {}
        self.reports: Table[list[Json]] = Table(caps.orders)
        self.signals: Table[Json] = Table(caps.signals)
        self.decisions: Table[Json] = Table(caps.rows)
        self.execution_orders: Table[Json] = Table(caps.rows)
        # book and risk
        self.positions: dict[str, Json] = {}
        self.start_of_day: Json | None = None
        self.equity: Series[Json] = Series(caps.points)
        self.trading_state: Json | None = None
        self.limits: Json | None = None
        self.changes: Table[Json] = Table(caps.rows)
        self.denials: Series[Json] = Series(caps.points)
        self.breaches: Series[Json] = Series(caps.points)
        # analytics tables, by record key
        self.analytics: dict[str, Table[Json]] = {
            name: Table(caps.rows) for name in ("execution", "pnl", "quality", "deadletters", "alerts")
        }
        # models, platform
        self.models: dict[str, Json] = {}  # "<model name>|<role>" -> latest ModelChanged
        self.monitoring: Table[Json] = Table(caps.rows)  # by model version: the latest report
        self.live_by_bar: Table[Json] = Table(caps.signals)  # "<symbol>|<bar_ts>" -> the live signal
        self.agreement: dict[str, dict[str, int]] = {}  # "<live version>|<shadow version>" -> counts
        self.deployments: Table[Json] = Table(caps.rows)
        self.broker: Json | None = None
        self.reconciliation: Json | None = None
        self.verification: Json | None = None
        self.applied = 0
        self._folds: dict[str, Callable[[Message, ConsumedMessage], list[Update]]] = {
            "oms.events.v1": self._order_event,
            "oms.positions.v1": self._position,
            "oms.reconciliation.v1": self._reconciliation,
            "risk.decisions.v1": self._decision,
            "risk.state.v1": self._state,
            "risk.limits.v1": self._limits,
            "risk.changes.v1": self._change,
            "risk.alerts.v1": self._breach,
            "risk.equity.v1": self._start_of_day,
            "execution.reports.v1": self._report,
            "execution.quality.v1": self._execution_quality,
            "execution.status.v1": self._broker,
            "signal.signals.v1": self._signal,
            "signal.shadow.v1": self._shadow_signal,
            "signal.models.v1": self._model_changed,
            "signal.monitoring.v1": self._monitoring,
            "platform.deployments.v1": self._deployment,
            "audit.verifications.v1": self._verification,
            "analytics.execution.v1": self._analytics("execution", "window_start"),
            "analytics.pnl.v1": self._analytics("pnl", None),
            "analytics.quality.v1": self._analytics("quality", "window_start"),
            "analytics.deadletters.v1": self._analytics("deadletters", "window_start"),
            "analytics.alerts.v1": self._analytics("alerts", "starts_at"),
        }

    def apply(self, message: ConsumedMessage) -> list[Update]:
        fold = self._folds.get(message.topic)
        if fold is None:
            return []
        updates = fold(message.value, message)
        self.applied += 1
        return updates

    # -- orders --------------------------------------------------------------------------------------------------
    def _forget_order(self, client_order_id: str, _: Json) -> None:
        for index in (self.order_events, self.fills):
            index.pop(client_order_id, None)

    def _bounded_append(self, index: dict[str, list[Json]], key: str, item: Json) -> None:
        items = index.setdefault(key, [])
        items.append(item)
        if len(items) > self.caps.events_per_order:
            del items[0]

    def _order_event(self, event: Any, message: ConsumedMessage) -> list[Update]:
        cid = event.client_order_id or event.order.client_order_id
        order = to_json(event.order)
        created = event.order.created_at or ts_of(event)
        self.orders.put(cid, created, order)
        ts = ts_of(event)
        self._bounded_append(
            self.order_events,
            cid,
            {
                "message_id": event.envelope.message_id,
                "event_type": enum_name(event.DESCRIPTOR.fields_by_name["event_type"].enum_type, event.event_type),
                "status": order["status"],
                "ts": rfc3339(ts),
                "ts_ns": ts,
                "reason": event.reason,
                "fill_id": event.fill_id,
                "last_quantity": event.last_quantity.value or None,
                "last_price": event.last_price.value or None,
                "filled_quantity": order["filled_quantity"],
            },
        )
        updates: list[Update] = [("orders", order)]
        if event.fill_id:
            fill = {
                "client_order_id": cid,
                "fill_id": event.fill_id,
                "symbol": event.order.symbol,
                "side": order["side"],
                "quantity": event.last_quantity.value or None,
                "price": event.last_price.value or None,
                "ts": rfc3339(ts),
                "ts_ns": ts,
            }
            self._bounded_append(self.fills, cid, fill)
            updates.append(("fills", fill))
        return updates

    def _report(self, report: Any, message: ConsumedMessage) -> list[Update]:
        # A report may come before its order's event (another topic): kept by order, as many orders as orders.
        cid = report.client_order_id
        reports = self.reports.get(cid)
        if reports is None:
            reports = []
            self.reports.put(cid, ts_of(report), reports)
        reports.append(to_json(report))
        if len(reports) > self.caps.events_per_order:
            del reports[0]
        return []

    def _signal(self, signal: Any, message: ConsumedMessage) -> list[Update]:
        data = to_json(signal)
        self.signals.put(signal.envelope.message_id, ts_of(signal), data)
        self.live_by_bar.put(f"{signal.symbol}|{signal.bar_ts}", ts_of(signal), data)
        return [("signals", data)]

    def _shadow_signal(self, signal: Any, message: ConsumedMessage) -> list[Update]:
        live = self.live_by_bar.get(f"{signal.symbol}|{signal.bar_ts}")
        if live is None:
            return []
        pair = f"{live['model_version']}|{signal.model_version}"
        counts = self.agreement.setdefault(pair, {"compared": 0, "agreed": 0})
        counts["compared"] += 1
        same_side = (live["target_weight"] > 0) == (signal.target_weight > 0) and (live["target_weight"] < 0) == (
            signal.target_weight < 0
        )
        counts["agreed"] += int(same_side)
        return [("models", self.models_view())]

    def _decision(self, decision: Any, message: ConsumedMessage) -> list[Update]:
        data = to_json(decision)
        self.decisions.put(decision.client_order_id, ts_of(decision), data)
        if not decision.approved:
            self.denials.append(ts_of(decision), data)
        return [("decisions", data)]

    def _execution_quality(self, measured: Any, message: ConsumedMessage) -> list[Update]:
        data = to_json(measured)
        self.execution_orders.put(measured.client_order_id, ts_of(measured), data)
        return [("execution_orders", data)]

    def lineage(self, client_order_id: str) -> Json | None:
        order = self.orders.get(client_order_id)
        if order is None:
            return None
        lineage = order["lineage"]
        signal = self.signals.get(lineage["signal_id"]) if lineage["signal_id"] else None
        decision = self.decisions.get(client_order_id)
        reports = self.reports.get(client_order_id) or []
        broker_order_id = lineage["broker_order_id"] or next(
            (r["broker_order_id"] for r in reversed(reports) if r["broker_order_id"]), ""
        )
        return {
            "order": order,
            "lineage": {
                "signal": None
                if signal is None
                else {
                    "signal_id": lineage["signal_id"],
                    "model_name": signal["model_name"],
                    "model_version": signal["model_version"],
                    "feature_hash": signal["feature_hash"],
                    "target_weight": signal["target_weight"],
                    "reference_price": signal["reference_price"],
                    "strategy_id": signal["strategy_id"],
                    "ts": signal["envelope"]["ts_event"],
                    "ts_ns": signal["envelope"]["ts_event_ns"],
                },
                "signal_id": lineage["signal_id"],
                "model_version": lineage["model_version"],
                "feature_hash": lineage["feature_hash"],
                "submitted_by": lineage["submitted_by"],
                "risk_decision": None
                if decision is None
                else {
                    "risk_decision_id": decision["envelope"]["message_id"],
                    "approved": decision["approved"],
                    "reason_code": decision["reason_code"],
                    "reason": decision["reason"],
                    "trading_state": decision["trading_state"],
                    "limits_version": decision["limits_version"],
                    "ts": decision["envelope"]["ts_event"],
                    "ts_ns": decision["envelope"]["ts_event_ns"],
                },
                "events": list(self.order_events.get(client_order_id, [])),
                "broker_order_id": broker_order_id,
                "fills": list(self.fills.get(client_order_id, [])),
                "execution_quality": self.execution_orders.get(client_order_id),
            },
        }

    # -- book, equity ------------------------------------------------------------------------------------------
    def _position(self, changed: Any, message: ConsumedMessage) -> list[Update]:
        item = to_json(changed.position)
        ts = ts_of(changed)
        item.update({"updated_at": rfc3339(ts), "updated_at_ns": ts})
        self.positions[changed.position.symbol] = item
        updates: list[Update] = [("positions", item)]
        point = self._equity_point(ts, "book")
        if point is not None:
            updates.append(("equity", point))
        return updates

    def book_pnl(self) -> Decimal:
        return sum((_dec(p["realized_pnl"]) + _dec(p["unrealized_pnl"]) for p in self.positions.values()), Decimal(0))

    def current_equity(self) -> Decimal | None:
        if self.start_of_day is None:
            return None
        return _dec(self.start_of_day["equity"]) + self.book_pnl() - _dec(self.start_of_day["book_pnl"])

    def _equity_point(self, ts: int, source: str) -> Json | None:
        equity = self.current_equity()
        if equity is None:
            return None
        point = {"ts": rfc3339(ts), "ts_ns": ts, "equity": _plain(equity), "source": source}
        self.equity.append(ts, point)
        return point

    def _start_of_day(self, recorded: Any, message: ConsumedMessage) -> list[Update]:
        self.start_of_day = to_json(recorded)
        point = self._equity_point(ts_of(recorded), "start_of_day")
        return [("equity", point)] if point else []

    def account(self) -> Json:
        realized = sum((_dec(p["realized_pnl"]) for p in self.positions.values()), Decimal(0))
        unrealized = sum((_dec(p["unrealized_pnl"]) for p in self.positions.values()), Decimal(0))
        equity = self.current_equity()
        today = trading_day(self.clock_ns())
        day = self.analytics["pnl"].get(f"{today}|_all")
        sod = self.start_of_day
        return {
            "equity": _plain(equity) if equity is not None else None,
            "start_of_day_equity": sod["equity"] if sod else None,
            "trading_day": sod["trading_day"] if sod else None,
            "pnl_today": _plain(self.book_pnl() - _dec(sod["book_pnl"])) if sod else None,
            "realized_pnl_today": day["realized"] if day else None,
            "unrealized_pnl_today": day["unrealized"] if day else None,
            "realized_pnl": _plain(realized),
            "unrealized_pnl": _plain(unrealized),
            "gross_exposure": _plain(self._exposure()[0]),
            "net_exposure": _plain(self._exposure()[1]),
            "open_positions": sum(1 for p in self.positions.values() if _dec(p["quantity"]) != 0),
            "trading_state": self.trading_state["state"] if self.trading_state else "UNSPECIFIED",
            "account_id": sod["account_id"] if sod else None,
        }

    def _exposure(self) -> tuple[Decimal, Decimal]:
        gross = net = Decimal(0)
        for p in self.positions.values():
            notional = _dec(p["quantity"]) * _dec(p["market_price"] or p["average_entry_price"])
            gross += abs(notional)
            net += notional
        return gross, net

    # -- risk --------------------------------------------------------------------------------------------------
    def _state(self, changed: Any, message: ConsumedMessage) -> list[Update]:
        self.trading_state = to_json(changed)
        return [("risk", self.risk_view())]

    def _limits(self, changed: Any, message: ConsumedMessage) -> list[Update]:
        self.limits = to_json(changed)
        return [("risk", self.risk_view())]

    def _change(self, recorded: Any, message: ConsumedMessage) -> list[Update]:
        data = to_json(recorded)
        self.changes.put(recorded.change_id, recorded.requested_at or ts_of(recorded), data)
        return [("risk_changes", data)]

    def _breach(self, alert: Any, message: ConsumedMessage) -> list[Update]:
        data = to_json(alert)
        self.breaches.append(ts_of(alert), data)
        return [("breaches", data)]

    def risk_view(self) -> Json:
        state = self.trading_state
        limits = self.limits["limits"] if self.limits else None
        return {
            "trading_state": state["state"] if state else "UNSPECIFIED",
            "reason": state["reason"] if state else "",
            "actor": state["actor"] if state else "",
            "changed_at": state["envelope"]["ts_event"] if state else None,
            "changed_at_ns": state["envelope"]["ts_event_ns"] if state else 0,
            "limits_version": limits["version"] if limits else "",
            "limits": self._utilisation(limits) if limits else [],
        }

    def _utilisation(self, limits: Json) -> list[Json]:
        gross, net = self._exposure()
        largest = max(
            (
                abs(_dec(p["quantity"]) * _dec(p["market_price"] or p["average_entry_price"]))
                for p in self.positions.values()
            ),
            default=Decimal(0),
        )
        today = trading_day(self.clock_ns())
        orders_today = sum(1 for d in self.decisions.values() if d["approved"] and _day_of(d) == today)
        sod = self.start_of_day
        loss = -(self.book_pnl() - _dec(sod["book_pnl"])) if sod else None
        peak = max((_dec(p["equity"]) for p in self.equity.values()), default=None)
        equity = self.current_equity()
        drawdown = (peak - equity) / peak if peak and equity is not None and peak > 0 else None
        used: dict[str, Decimal | None] = {
            "max_position_notional": largest,
            "max_gross_exposure": gross,
            "max_net_exposure": abs(net),
            "max_orders_per_day": Decimal(orders_today),
            "max_daily_loss": max(loss, Decimal(0)) if loss is not None else None,
            "max_drawdown": max(drawdown, Decimal(0)) if drawdown is not None else None,
        }
        rows = []
        for name in (
            "max_order_quantity",
            "max_order_notional",
            "price_collar",
            "max_position_notional",
            "max_gross_exposure",
            "max_net_exposure",
            "max_orders_per_second",
            "max_orders_per_day",
            "max_daily_loss",
            "max_drawdown",
            "max_market_data_age_ms",
        ):
            raw = limits.get(name)
            limit = _dec(str(raw)) if raw not in (None, "", 0) else None
            value = used.get(name)
            ratio = value / limit if value is not None and limit else None
            rows.append(
                {
                    "name": name,
                    "limit": _plain(limit) if limit is not None else None,
                    "used": _plain(value) if value is not None else None,
                    "utilisation": float(round(ratio, 6)) if ratio is not None else None,
                }
            )
        return rows

    def denials_by_reason(self, from_ns: int | None, to_ns: int | None) -> Json:
        counts: dict[str, int] = {}
        total = 0
        for denial in self.denials.values():
            ts = denial["envelope"]["ts_event_ns"]
            if (from_ns is not None and ts < from_ns) or (to_ns is not None and ts >= to_ns):
                continue
            counts[denial["reason_code"]] = counts.get(denial["reason_code"], 0) + 1
            total += 1
        return {"total": total, "by_reason": counts}

    # -- analytics, models, platform ---------------------------------------------------------------------------
    def _analytics(self, table: str, time_field: str | None) -> Callable[[Message, ConsumedMessage], list[Update]]:
        def fold(value: Message, message: ConsumedMessage) -> list[Update]:
            data = to_json(value)
            if time_field is None:  # analytics.pnl.v1: by day
                ts = _day_ns(data["day"]) or ts_of(value)
            else:
                ts = data[f"{time_field}_ns"] or ts_of(value)
            self.analytics[table].put(message.key or data["envelope"]["message_id"], ts, data)
            return [(table, data)]

        return fold

    def _model_changed(self, changed: Any, message: ConsumedMessage) -> list[Update]:
        self.models[f"{changed.model_name}|{changed.role}"] = to_json(changed)
        return [("models", self.models_view())]

    def _monitoring(self, report: Any, message: ConsumedMessage) -> list[Update]:
        self.monitoring.put(f"{report.model_name}|{report.model_version}|{report.role}", ts_of(report), to_json(report))
        return [("models", self.models_view())]

    def models_view(self) -> Json:
        agreement = [
            {
                "live_version": pair.split("|")[0],
                "shadow_version": pair.split("|")[1],
                "compared": counts["compared"],
                "agreed": counts["agreed"],
                "agreement": counts["agreed"] / counts["compared"] if counts["compared"] else None,
            }
            for pair, counts in sorted(self.agreement.items())
        ]
        monitoring = list(self.monitoring.values())
        return {
            "models": [self.models[key] for key in sorted(self.models)],
            "monitoring": [
                {
                    "model_name": r["model_name"],
                    "model_version": r["model_version"],
                    "role": r["role"],
                    "observations": r["observations"],
                    "max_drift": r["max_drift"],
                    "drift_alert": r["drift_alert"],
                    "drift": r["drift"],
                    "realised_reward": r["realised_reward"],
                    "expected_reward": r["expected_reward"],
                    "ts": r["envelope"]["ts_event"],
                    "ts_ns": r["envelope"]["ts_event_ns"],
                }
                for r in monitoring
            ],
            "agreement": agreement,
        }

    def _deployment(self, changed: Any, message: ConsumedMessage) -> list[Update]:
        data = to_json(changed)
        self.deployments.put(changed.envelope.message_id, ts_of(changed), data)
        return [("deployments", data)]

    def _broker(self, changed: Any, message: ConsumedMessage) -> list[Update]:
        self.broker = to_json(changed)
        return [("broker", self.broker)]

    def _reconciliation(self, completed: Any, message: ConsumedMessage) -> list[Update]:
        self.reconciliation = to_json(completed)
        return [("reconciliation", self.reconciliation)]

    def _verification(self, completed: Any, message: ConsumedMessage) -> list[Update]:
        self.verification = to_json(completed)
        return [("audit", self.verification)]


def _day_of(decision: Json) -> str:
    return trading_day(decision["envelope"]["ts_event_ns"])


def _day_ns(day: str) -> int:
    try:
        return int(datetime.fromisoformat(day).replace(tzinfo=EXCHANGE_TZ).timestamp()) * 1_000_000_000
    except ValueError:
        return 0
