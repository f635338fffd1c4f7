"""The compliance report: pure functions from ledger entries to sections of rows, and its HTML, CSV and JSON forms.

Every section is a list of rows (column name -> text): decimals stay exact strings, times are ISO-8601 UTC. Only the
ledger is read (never the topics): an entry's payload is decoded by its recorded message type. Entries are in range
when their event time (envelope ts_event, else the time the ledger recorded them) is in [start, end).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from trading.audit.v1 import audit_pb2
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading_platform.decimals import from_proto
from trading_platform.topics import TOPICS

from audit_service.ledger import VerifyResult, read_segment

Row = dict[str, str]
TYPES: dict[str, type[Message]] = {t.type_name: t.message_type for t in TOPICS.values()}
TYPES[common_pb2.DeadLetter.DESCRIPTOR.full_name] = common_pb2.DeadLetter

COLUMNS: dict[str, list[str]] = {
    "blotter": ["time", "symbol", "side", "quantity", "price", "client_order_id", "broker_order_id", "fill_id"],
    "order_trail": [
        "client_order_id",
        "sequence",
        "event_time",
        "recorded_at",
        "topic",
        "event",
        "actor",
        "signal_id",
        "model_version",
        "feature_hash",
        "risk_decision",
        "detail",
    ],
    "risk_events": ["time", "kind", "reason", "client_order_id", "symbol", "side", "quantity", "detail"],
    "risk_by_reason": ["kind", "reason", "count"],
    "control_changes": ["time", "source", "change_id", "change", "event", "actor", "requested_by", "reason"],
    "access": ["time", "source", "event", "actor", "subject", "detail", "client_address"],
    "model_deployment": ["time", "source", "subject", "action", "from", "to", "operator", "detail"],
    "best_execution": [
        "client_order_id",
        "symbol",
        "side",
        "quantity",
        "filled_quantity",
        "status",
        "reference_price",
        "reference_source",
        "average_fill_price",
        "slippage_bps",
        "fill_ratio",
        "execution_slippage_bps",
        "submit_to_accept_ms",
        "submit_to_last_fill_ms",
    ],
    "dead_letters": ["time", "source_topic", "source_offset", "reason_code", "reason", "consumer_group", "attempts"],
    "checkpoints": ["segment", "first_sequence", "last_sequence", "last_hash", "checkpoint_hash"],
    "retention": ["segment", "action", "target", "last_sequence", "checkpoint_hash", "bytes", "read_back_sha256"],
}
TITLES = {
    "blotter": "Trade blotter",
    "order_trail": "Order audit trail",
    "risk_events": "Risk denials and breaches",
    "risk_by_reason": "Risk denials and breaches by reason",
    "control_changes": "Kill-switch and limit changes",
    "access": "User access and refused calls",
    "model_deployment": "Model and deployment changes",
    "best_execution": "Best execution (per order)",
    "dead_letters": "Dead letters (messages a consumer could not handle)",
    "checkpoints": "Ledger checkpoints",
    "retention": "Retention and archival",
}
NOT_AVAILABLE = [
    "effective and realised spread: the ledger holds no quote at each fill's time in the order's lineage",
    "VWAP / interval benchmarks: market volume over each order's life is not joined to the order",
    "venue comparison: one broker, so no alternative venue prices",
]


class ReportError(ValueError):
    """Bad input to the report (a flag, a range); the message names it."""


def parse_time(value: str, flag: str, *, end: bool = False) -> int:
    """UNIX ns of an ISO date or date-time (UTC unless it says otherwise). A bare date as --to covers that day."""
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            if end:
                moment += dt.timedelta(days=1)
        else:
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError as error:
        raise ReportError(f"{flag}: {value!r} is not a date (YYYY-MM-DD) or ISO date-time ({error})") from None
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def iso(ns: int) -> str:
    if not ns:
        return ""
    moment = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC) + dt.timedelta(microseconds=ns % 10**9 // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def decimal_text(value: common_pb2.Decimal) -> str:
    number = from_proto(value, None)
    return "" if number is None else str(number)


def enum_name(message: Message, field_name: str, prefix: str) -> str:
    descriptor = message.DESCRIPTOR.fields_by_name[field_name].enum_type
    assert descriptor is not None, f"{field_name} is not an enum"
    return descriptor.values_by_number[getattr(message, field_name)].name.removeprefix(prefix)


@dataclass
class Report:
    start: int
    end: int
    sections: dict[str, list[Row]]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.summary.get("entries_in_range", 0) == 0


def event_time(entry: audit_pb2.LedgerEntry) -> int:
    return entry.ts_event or entry.recorded_at


def decode(entry: audit_pb2.LedgerEntry) -> Message | None:
    message_type = TYPES.get(entry.message_type)
    return message_type.FromString(entry.payload) if message_type is not None else None


def in_range(entries: Iterable[audit_pb2.LedgerEntry], start: int, end: int) -> list[audit_pb2.LedgerEntry]:
    return [e for e in entries if start <= event_time(e) < end]


def logical_topic(entry: audit_pb2.LedgerEntry) -> str:
    """The registered name of an entry's topic (the ledger records the namespaced, physical one)."""
    for name in TOPICS:
        if entry.topic.endswith(name) and not entry.topic.startswith("shadow."):
            rest = entry.topic[: -len(name)]
            if not rest.endswith("shadow."):
                return name
    return entry.topic


@dataclass
class _Order:
    client_order_id: str
    symbol: str = ""
    side: str = ""
    quantity: str = ""
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    status: str = ""
    lineage: oms_pb2.OrderLineage = field(default_factory=oms_pb2.OrderLineage)
    decision: str = ""
    arrival_price: str = ""
    quality: execution_pb2.ExecutionQualityMeasured | None = None
    events: list[tuple[audit_pb2.LedgerEntry, Message]] = field(default_factory=list)


def build_report(
    entries: Iterable[audit_pb2.LedgerEntry],
    start: int,
    end: int,
    verification: VerifyResult,
    checkpoints: list[Row] | None = None,
    retention: list[Row] | None = None,
) -> Report:
    """Every section from the ledger entries whose event time is in [start, end)."""
    chosen = in_range(entries, start, end)
    # In event-time order (the ledger's order across topics is the order audit consumed them in).
    chosen.sort(key=lambda e: (event_time(e), e.sequence))
    decoded = [(e, m) for e in chosen if (m := decode(e)) is not None]
    orders: dict[str, _Order] = {}
    signals: dict[str, Message] = {}
    blotter: list[Row] = []
    risk_events: list[Row] = []
    control: list[Row] = []
    access: list[Row] = []
    changes: list[Row] = []
    dead: list[Row] = []
    seen_fills: set[tuple[str, str]] = set()

    for entry, message in decoded:
        topic = logical_topic(entry)
        when = iso(event_time(entry))
        order_topic = topic in ("oms.commands.v1", "oms.events.v1", "risk.decisions.v1") or topic.startswith(
            "execution."
        )
        new_fill = False
        if isinstance(message, execution_pb2.ExecutionReport) and message.report_type in (
            execution_pb2.EXECUTION_REPORT_TYPE_FILL,
            execution_pb2.EXECUTION_REPORT_TYPE_PARTIAL_FILL,
        ):
            key = (message.client_order_id, message.fill_id or str(entry.sequence))
            new_fill = key not in seen_fills  # a fill reported twice is one trade
            seen_fills.add(key)
            if new_fill:
                blotter.append(
                    {
                        "time": iso(message.broker_ts or event_time(entry)),
                        "symbol": message.symbol,
                        "side": enum_name(message, "side", "ORDER_SIDE_"),
                        "quantity": decimal_text(message.last_quantity),
                        "price": decimal_text(message.last_price),
                        "client_order_id": message.client_order_id,
                        "broker_order_id": message.broker_order_id,
                        "fill_id": message.fill_id,
                    }
                )
        if entry.client_order_id and order_topic:
            order = orders.setdefault(entry.client_order_id, _Order(entry.client_order_id))
            order.events.append((entry, message))
            _fold_order(order, message, new_fill)
        name = message.DESCRIPTOR.name
        if name == "SignalGenerated":
            signals[message.envelope.message_id] = message  # type: ignore[attr-defined]
        elif isinstance(message, risk_pb2.RiskDecision) and not message.approved:
            risk_events.append(
                {
                    "time": when,
                    "kind": "denial",
                    "reason": enum_name(message, "reason_code", "REASON_CODE_"),
                    "client_order_id": message.client_order_id,
                    "symbol": message.symbol,
                    "side": enum_name(message, "side", "ORDER_SIDE_"),
                    "quantity": decimal_text(message.quantity),
                    "detail": message.reason,
                }
            )
        elif isinstance(message, risk_pb2.RiskAlertRaised):
            risk_events.append(
                {
                    "time": when,
                    "kind": "breach",
                    "reason": message.kind,
                    "client_order_id": "",
                    "symbol": message.details.get("symbol", ""),
                    "side": "",
                    "quantity": "",
                    "detail": f"{enum_name(message, 'severity', 'ALERT_SEVERITY_')}: {message.message}",
                }
            )
        elif topic in ("risk.changes.v1", "risk.state.v1", "risk.limits.v1"):
            control.append(_control_row(topic, when, message))
        elif topic in ("identity.events.v1", "security.refusals.v1"):
            access.append(_access_row(topic, when, message))
        elif topic in ("platform.deployments.v1", "signal.models.v1"):
            changes.append(_change_row(topic, when, message))
        elif isinstance(message, common_pb2.DeadLetter):
            dead.append(
                {
                    "time": when,
                    "source_topic": message.source_topic,
                    "source_offset": str(message.source_offset),
                    "reason_code": message.reason_code,
                    "reason": message.reason,
                    "consumer_group": message.consumer_group,
                    "attempts": str(message.attempts),
                }
            )

    trail: list[Row] = []
    for order in orders.values():
        for entry, message in order.events:
            trail.append(_trail_row(order, entry, message))
    best = [_best_execution_row(order, signals) for order in orders.values() if order.symbol]
    by_reason = Counter((row["kind"], row["reason"]) for row in risk_events)
    sections = {
        "blotter": blotter,
        "order_trail": trail,
        "risk_events": risk_events,
        "risk_by_reason": [
            {"kind": kind, "reason": reason, "count": str(count)} for (kind, reason), count in sorted(by_reason.items())
        ],
        "control_changes": control,
        "access": access,
        "model_deployment": changes,
        "dead_letters": dead,
        "best_execution": best,
        "checkpoints": checkpoints or [],
        "retention": retention or [],
    }
    summary: dict[str, Any] = {
        "from": iso(start),
        "to": iso(end),
        "entries_in_range": len(chosen),
        "rows": {name: len(rows) for name, rows in sections.items()},
        "verification": {
            "ok": verification.ok,
            "entries_checked": verification.entries_checked,
            "first_error": verification.first_error,
        },
        "best_execution": _execution_summary(list(orders.values()), best),
        "not_available": NOT_AVAILABLE,
    }
    if not chosen:
        summary["note"] = f"no ledger entries between {iso(start)} and {iso(end)}"
    return Report(start, end, sections, summary)


def _fold_order(order: _Order, message: Message, new_fill: bool) -> None:
    if isinstance(message, oms_pb2.OrderCommand) and message.WhichOneof("command") == "submit_order":
        submit = message.submit_order
        order.symbol, order.side = submit.symbol, enum_name(submit, "side", "ORDER_SIDE_")
        order.quantity = decimal_text(submit.quantity)
        order.arrival_price = decimal_text(submit.arrival_price)
        order.lineage.MergeFrom(submit.lineage)
    elif isinstance(message, oms_pb2.OrderEvent):
        book = message.order
        if book.symbol:
            order.symbol, order.side = book.symbol, enum_name(book, "side", "ORDER_SIDE_")
            order.quantity = decimal_text(book.quantity)
            order.status = enum_name(book, "status", "ORDER_STATUS_")
        order.lineage.MergeFrom(book.lineage)
    elif isinstance(message, risk_pb2.RiskDecision):
        reason = enum_name(message, "reason_code", "REASON_CODE_")
        order.decision = "approved" if message.approved else f"denied: {reason}"
        if not order.symbol:
            order.symbol, order.side = message.symbol, enum_name(message, "side", "ORDER_SIDE_")
            order.quantity = decimal_text(message.quantity)
        if not message.approved:
            order.status = order.status or "DENIED"
    elif isinstance(message, execution_pb2.ExecutionQualityMeasured):
        order.quality = message  # the execution service's own TCA of the order (the latest one counts)
    elif isinstance(message, execution_pb2.ExecutionReport):
        if message.broker_order_id:
            order.lineage.broker_order_id = message.broker_order_id
        if new_fill:
            quantity = from_proto(message.last_quantity) or Decimal(0)
            order.filled += quantity
            order.notional += quantity * (from_proto(message.last_price) or Decimal(0))


def _actor(entry: audit_pb2.LedgerEntry, message: Message) -> str:
    if isinstance(message, oms_pb2.OrderCommand):
        kind = message.WhichOneof("command")
        if kind == "submit_order" and message.submit_order.lineage.submitted_by:
            return message.submit_order.lineage.submitted_by
        if kind == "cancel_order" and message.cancel_order.requested_by:
            return message.cancel_order.requested_by
    return message.envelope.producer  # type: ignore[attr-defined, no-any-return]


def _event_name(message: Message) -> str:
    if isinstance(message, oms_pb2.OrderCommand):
        return str(message.WhichOneof("command") or "command")
    if isinstance(message, oms_pb2.OrderEvent):
        return enum_name(message, "event_type", "ORDER_EVENT_TYPE_")
    if isinstance(message, execution_pb2.ExecutionReport):
        return "report " + enum_name(message, "report_type", "EXECUTION_REPORT_TYPE_")
    if isinstance(message, risk_pb2.RiskDecision):
        return "risk " + ("approved" if message.approved else "denied")
    return message.DESCRIPTOR.name


def _detail(message: Message) -> str:
    if isinstance(message, oms_pb2.OrderEvent):
        parts = [message.reason]
        if message.last_quantity.value:
            parts.append(f"{message.last_quantity.value} @ {message.last_price.value}")
        return "; ".join(p for p in parts if p)
    if isinstance(message, execution_pb2.ExecutionReport):
        if message.last_quantity.value:
            return f"{message.last_quantity.value} @ {message.last_price.value}"
        return message.reason
    if isinstance(message, risk_pb2.RiskDecision):
        return message.reason
    if isinstance(message, oms_pb2.OrderCommand) and message.WhichOneof("command") == "cancel_order":
        return message.cancel_order.reason
    return ""


def _trail_row(order: _Order, entry: audit_pb2.LedgerEntry, message: Message) -> Row:
    return {
        "client_order_id": order.client_order_id,
        "sequence": str(entry.sequence),
        "event_time": iso(event_time(entry)),
        "recorded_at": iso(entry.recorded_at),
        "topic": logical_topic(entry),
        "event": _event_name(message),
        "actor": _actor(entry, message),
        "signal_id": order.lineage.signal_id,
        "model_version": order.lineage.model_version,
        "feature_hash": order.lineage.feature_hash,
        "risk_decision": order.decision,
        "detail": _detail(message),
    }


def _describe_change(change: risk_pb2.ProposedChange) -> str:
    kind = change.WhichOneof("change")
    if kind == "trading_state":
        state = change.trading_state
        return (
            f"trading state {enum_name(state, 'from_state', 'TRADING_STATE_')} -> "
            f"{enum_name(state, 'state', 'TRADING_STATE_')}"
        )
    if kind == "limits":
        raised = change.limits.raised
        fields = [
            f"{f.name}={v.value if hasattr(v, 'value') else v}" for f, v in raised.ListFields() if f.name != "version"
        ]
        if change.limits.unrestricted_symbols:
            fields.append("unrestrict " + ",".join(change.limits.unrestricted_symbols))
        return f"limits {change.limits.version}: " + " ".join(fields)
    return ""


def _control_row(topic: str, when: str, message: Any) -> Row:
    if topic == "risk.changes.v1":
        return {
            "time": when,
            "source": topic,
            "change_id": message.change_id,
            "change": _describe_change(message.change),
            "event": enum_name(message, "event_type", "CHANGE_EVENT_TYPE_"),
            "actor": message.actor,
            "requested_by": message.requested_by,
            "reason": message.reason,
        }
    if topic == "risk.state.v1":
        change = (
            f"trading state {enum_name(message, 'previous_state', 'TRADING_STATE_')} -> "
            f"{enum_name(message, 'state', 'TRADING_STATE_')}"
        )
        if message.cancel_open_orders:
            change += " (cancel open orders)"
        return {
            "time": when,
            "source": topic,
            "change_id": "",
            "change": change,
            "event": "APPLIED",
            "actor": message.actor,
            "requested_by": "",
            "reason": message.reason,
        }
    return {
        "time": when,
        "source": topic,
        "change_id": "",
        "change": f"limits {message.previous.version or '-'} -> {message.limits.version}",
        "event": "APPLIED",
        "actor": message.actor,
        "requested_by": "",
        "reason": message.reason,
    }


def _access_row(topic: str, when: str, message: Any) -> Row:
    if topic == "security.refusals.v1":
        return {
            "time": when,
            "source": topic,
            "event": f"refused {message.code}",
            "actor": message.actor,
            "subject": f"{message.service}{message.method}",
            "detail": message.reason + (f" (certificate {message.certificate})" if message.certificate else ""),
            "client_address": message.peer,
        }
    kind = message.WhichOneof("event") or ""
    event = getattr(message, kind) if kind else None
    subject = ""
    details: list[str] = []
    if event is not None:
        for descriptor, value in event.ListFields():
            if descriptor.name in ("username", "owner", "subject") and not subject:
                subject = str(value)
            elif descriptor.name in ("locked_until", "expires_at"):
                details.append(f"{descriptor.name}={iso(int(value))}")
            elif descriptor.name.endswith("session_ids"):
                details.append(f"sessions_revoked={len(value)}")
            elif isinstance(value, str | int | bool):
                details.append(f"{descriptor.name}={value}")
            else:  # a repeated field
                details.append(f"{descriptor.name}={','.join(value)}")
    return {
        "time": when,
        "source": topic,
        "event": kind,
        "actor": message.actor,
        "subject": subject,
        "detail": " ".join(details),
        "client_address": message.client_address,
    }


def _change_row(topic: str, when: str, message: Any) -> Row:
    if topic == "platform.deployments.v1":
        detail = "checks: " + ", ".join(message.checks) if message.checks else "no checks"
        if message.forced:
            detail += "; FORCED"
        if message.reason:
            detail += f"; {message.reason}"
        return {
            "time": when,
            "source": topic,
            "subject": message.service,
            "action": message.action,
            "from": message.from_colour,
            "to": message.to_colour,
            "operator": message.operator,
            "detail": detail,
        }
    return {
        "time": when,
        "source": topic,
        "subject": f"{message.model_name} ({message.role})",
        "action": "load" if message.model_version else "drop",
        "from": message.previous_version,
        "to": message.model_version,
        "operator": message.envelope.producer,
        "detail": f"content {message.content_hash}" + (f"; {message.reason}" if message.reason else ""),
    }


def _reference(order: _Order, signals: dict[str, Message]) -> tuple[Decimal | None, str]:
    signal = signals.get(order.lineage.signal_id)
    if signal is not None:
        price = from_proto(signal.reference_price, None)  # type: ignore[attr-defined]
        if price:
            return price, "signal reference price"
    if order.arrival_price:
        return Decimal(order.arrival_price), "order arrival price"
    return None, "not available"


def _ms(ns: int) -> str:
    return str((Decimal(ns) / 1_000_000).quantize(Decimal("0.001"))) if ns else ""


def _best_execution_row(order: _Order, signals: dict[str, Message]) -> Row:
    quality = order.quality
    average = order.notional / order.filled if order.filled else None
    reference, source = _reference(order, signals)
    slippage = ""
    if average is not None and reference:
        sign = Decimal(1) if order.side == "BUY" else Decimal(-1)  # positive = paid more / received less
        slippage = str((sign * (average - reference) / reference * 10_000).quantize(Decimal("0.01")))
    quantity = Decimal(order.quantity) if order.quantity else Decimal(0)
    return {
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "quantity": order.quantity,
        "filled_quantity": str(order.filled),
        "status": order.status,
        "reference_price": "" if reference is None else str(reference),
        "reference_source": source,
        "average_fill_price": "" if average is None else str(average.quantize(Decimal("0.0001")).normalize()),
        "slippage_bps": slippage,
        "fill_ratio": str((order.filled / quantity).quantize(Decimal("0.0001"))) if quantity else "",
        "execution_slippage_bps": "" if quality is None else str(quality.slippage_bps),
        "submit_to_accept_ms": _ms(quality.submit_to_accept_ns) if quality else "",
        "submit_to_last_fill_ms": _ms(quality.submit_to_last_fill_ns) if quality else "",
    }


def _ratio(part: int, whole: int) -> str:
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"))) if whole else ""


def _execution_summary(orders: list[_Order], rows: list[Row]) -> dict[str, str]:
    statuses = Counter(o.status for o in orders)
    sent = [o for o in orders if o.status != "DENIED" and o.status]
    sent_ids = {o.client_order_id for o in sent}
    ordered = sum((Decimal(o.quantity) for o in sent if o.quantity), Decimal(0))
    filled = sum((o.filled for o in sent), Decimal(0))
    slippages = [Decimal(r["slippage_bps"]) for r in rows if r["slippage_bps"]]
    weights = [Decimal(r["filled_quantity"]) for r in rows if r["slippage_bps"]]
    weighted = sum((s * w for s, w in zip(slippages, weights, strict=True)), Decimal(0))
    return {
        "orders": str(len(orders)),
        "sent_to_broker": str(len(sent)),
        "denied_by_risk": str(statuses["DENIED"]),
        "filled": str(statuses["FILLED"]),
        "rejected": str(statuses["REJECTED"]),
        "canceled": str(statuses["CANCELED"]),
        "reject_rate": _ratio(statuses["REJECTED"], len(sent)),
        "cancel_rate": _ratio(statuses["CANCELED"], len(sent)),
        "fill_ratio": str((filled / ordered).quantize(Decimal("0.0001"))) if ordered else "",
        "arrival_slippage_bps_weighted": str((weighted / sum(weights)).quantize(Decimal("0.01"))) if weights else "",
        "sent_orders_without_reference_price": str(
            sum(1 for r in rows if r["client_order_id"] in sent_ids and r["reference_source"] == "not available")
        ),
    }


def checkpoint_rows(directory: Path) -> list[Row]:
    """The seals of the ledger's sealed segments, and the anchor of what retention removed."""
    rows = []
    anchor = directory / "anchor.json"
    if anchor.exists():
        data = json.loads(anchor.read_text())
        rows.append(
            {
                "segment": f"anchor (through {data.get('removed_through', '')})",
                "first_sequence": "",
                "last_sequence": str(data["last_sequence"]),
                "last_hash": data["last_hash"],
                "checkpoint_hash": "",
            }
        )
    for path in sorted(directory.glob("segment-*.log")):
        seal_file = path.with_suffix(".seal")
        if seal_file.exists():
            seal = json.loads(seal_file.read_text())
            rows.append({k: str(seal[k]) for k in COLUMNS["checkpoints"]})
            continue
        entries = [e for _, e, _ in read_segment(path) if e is not None]
        if entries:  # the open segment: its head is the chain's latest hash (no checkpoint until it is sealed)
            rows.append(
                {
                    "segment": f"{path.name} (open)",
                    "first_sequence": str(entries[0].sequence),
                    "last_sequence": str(entries[-1].sequence),
                    "last_hash": entries[-1].hash,
                    "checkpoint_hash": "",
                }
            )
    return rows


# --- output ---------------------------------------------------------------------------------------------------------


def write_report(report: Report, out: Path) -> list[Path]:
    """report.json, report.html and one CSV per section; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, columns in COLUMNS.items():
        path = out / f"{name}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(report.sections[name])
        written.append(path)
    document = {"summary": report.summary, "sections": report.sections}
    (out / "report.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "report.html").write_text(render_html(report))
    return [*written, out / "report.json", out / "report.html"]


def _table(columns: list[str], rows: list[Row]) -> str:
    if not rows:
        return "<p class=empty>No rows in this period.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(row.get(c, ''))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chart(rows: list[Row]) -> str:
    """An inline SVG bar chart of risk denials and breaches by reason."""
    if not rows:
        return ""
    top = max(int(r["count"]) for r in rows)
    bars = []
    for index, row in enumerate(rows):
        width = 300 * int(row["count"]) // top
        y = 22 * index
        label = html.escape(f"{row['kind']} {row['reason']}")
        bars.append(
            f'<text x="0" y="{y + 15}" font-size="12">{label}</text>'
            f'<rect x="260" y="{y + 3}" width="{width}" height="16" fill="#b44"/>'
            f'<text x="{265 + width}" y="{y + 15}" font-size="12">{row["count"]}</text>'
        )
    height = 22 * len(rows) + 4
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="620" height="{height}" role="img" '
        f'aria-label="risk events by reason">{"".join(bars)}</svg>'
    )


STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em;"
    "font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#eee}tr:nth-child(even){background:#fafafa}.ok{color:#070}.bad{color:#a00}.empty{color:#777}"
)


def render_html(report: Report) -> str:
    summary = report.summary
    verification = summary["verification"]
    status = (
        f"<p class=ok>Ledger verified: {verification['entries_checked']} entries, every hash, link and seal.</p>"
        if verification["ok"]
        else f"<p class=bad>Ledger FAILED verification: {html.escape(verification['first_error'])}</p>"
    )
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Compliance report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Compliance report {html.escape(summary['from'])} to {html.escape(summary['to'])}</h1>",
        status,
        f"<p>{summary['entries_in_range']} ledger entries in the period.</p>",
    ]
    if "note" in summary:
        parts.append(f"<p class=empty>{html.escape(summary['note'])}.</p>")
    execution = summary["best_execution"]
    parts.append("<h2>Best execution summary</h2>")
    parts.append(_table(["measure", "value"], [{"measure": k, "value": v} for k, v in execution.items()]))
    parts.append("<p>Not available from the recorded figures:</p><ul>")
    parts += [f"<li>{html.escape(item)}</li>" for item in summary["not_available"]]
    parts.append("</ul>")
    for name, columns in COLUMNS.items():
        parts.append(f"<h2>{TITLES[name]}</h2>")
        if name == "risk_by_reason":
            parts.append(_chart(report.sections[name]))
        parts.append(_table(columns, report.sections[name]))
    parts.append("</body></html>\n")
    return "".join(parts)
