"""Checking submit commands against their approvals, turning broker trade updates into execution reports, and
measuring execution quality. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading_platform.decimals import from_proto, to_proto

E = execution_pb2
EVENT_TYPES = {
    "pending_new": E.EXECUTION_REPORT_TYPE_PENDING_NEW,
    "new": E.EXECUTION_REPORT_TYPE_NEW,
    "accepted": E.EXECUTION_REPORT_TYPE_NEW,
    "partial_fill": E.EXECUTION_REPORT_TYPE_PARTIAL_FILL,
    "fill": E.EXECUTION_REPORT_TYPE_FILL,
    "canceled": E.EXECUTION_REPORT_TYPE_CANCELED,
    "expired": E.EXECUTION_REPORT_TYPE_EXPIRED,
    "replaced": E.EXECUTION_REPORT_TYPE_REPLACED,
    "rejected": E.EXECUTION_REPORT_TYPE_REJECTED,
    "pending_cancel": E.EXECUTION_REPORT_TYPE_PENDING_CANCEL,
    "done_for_day": E.EXECUTION_REPORT_TYPE_DONE_FOR_DAY,
}
TERMINAL = {"fill", "canceled", "expired", "rejected", "replaced"}


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def approval_mismatch(approval: risk_pb2.RiskDecision, order: oms_pb2.SubmitOrder) -> str | None:
    """How a submit command differs from the risk decision that approved it (symbol, side, quantity), or None when
    it is the order risk approved. A decision that does not say one of them matches nothing (fail closed)."""
    differences = []
    if approval.symbol != order.symbol:
        differences.append(f"symbol {order.symbol!r}, approved {approval.symbol!r}")
    if approval.side != order.side:
        differences.append(
            f"side {common_pb2.OrderSide.Name(order.side)}, approved {common_pb2.OrderSide.Name(approval.side)}"
        )
    approved_quantity = from_proto(approval.quantity, None)
    quantity = from_proto(order.quantity, None)
    if approved_quantity is None or quantity != approved_quantity:
        differences.append(f"quantity {quantity}, approved {approved_quantity}")
    if not differences:
        return None
    return "the command differs from its risk approval: " + "; ".join(differences)


@dataclass
class InFlight:
    client_order_id: str
    symbol: str
    side: int
    quantity: Decimal
    arrival_price: Decimal
    submitted_ns: int
    accepted_ns: int = 0
    first_fill_ns: int = 0
    last_fill_ns: int = 0
    filled: Decimal = Decimal(0)
    average_price: Decimal = Decimal(0)
    done: bool = False


FILLS = {"fill", "partial_fill"}
CLOSED_REPORTS = {E.EXECUTION_REPORT_TYPE_CANCELED, E.EXECUTION_REPORT_TYPE_EXPIRED, E.EXECUTION_REPORT_TYPE_REJECTED}
CATCH_UP_STATUS = {
    "canceled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
    "new": "new",
    "accepted": "new",
}


@dataclass
class Said:
    """What execution.reports.v1 says about one order: its fills (by fill id), their sum and notional, the report
    types said, and the highest cumulative quantity the broker has shown for it."""

    fill_ids: set[str] = field(default_factory=set)
    quantity: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    types: set[int] = field(default_factory=set)
    broker_filled: Decimal = Decimal(0)


@dataclass
class ExecutionEngine:
    """Turns trade updates (the broker may repeat or reorder them) into reports, each fill exactly once, and keeps
    what quality needs. `report_for` decides, `remember` records what was published: the app calls them around the
    publish, one update at a time, and folds its earlier reports with `remember` at start-up."""

    inflight: dict[str, InFlight] = field(default_factory=dict)
    said: dict[str, Said] = field(default_factory=dict)
    # Ambiguous submits never resolved: never sent again, whatever command names them.
    unresolved: set[str] = field(default_factory=set)

    def remember(self, report: execution_pb2.ExecutionReport) -> None:
        """Record a published report (and, at start-up, each report of execution.reports.v1)."""
        if report.refusal_code == E.REFUSAL_CODE_UNRESOLVED:
            self.unresolved.add(report.client_order_id)
            return
        said = self.said.setdefault(report.client_order_id, Said())
        said.types.add(report.report_type)
        said.broker_filled = max(said.broker_filled, Decimal(report.filled_quantity.value or 0))
        if report.fill_id and report.fill_id not in said.fill_ids:
            quantity = Decimal(report.last_quantity.value or 0)
            said.fill_ids.add(report.fill_id)
            said.quantity += quantity
            said.notional += quantity * Decimal(report.last_price.value or 0)

    def catch_up_updates(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """Synthetic trade updates for what the broker did to an order while nobody listened: the fills not yet
        reported (one update for their sum, at the price that makes the broker's average), then its closing status
        (canceled, expired, rejected) if that was not said either; or its acceptance if nothing was said at all.
        Both can be due: a partial fill and then a cancel."""
        client_order_id = order["client_order_id"]
        status = str(order.get("status")).split(".")[-1].lower()
        filled = _decimal(order.get("filled_qty"))
        average = _decimal(order.get("filled_avg_price"))
        said = self.said.get(client_order_id, Said())
        updates: list[dict[str, Any]] = []
        missing = filled - said.quantity
        if missing > 0:
            price = ((average * filled - said.notional) / missing).quantize(Decimal("0.0001"))
            updates.append(
                {
                    "event": "fill" if status == "filled" else "partial_fill",
                    "order": order,
                    "qty": str(missing),
                    "price": str(price),
                    "execution_id": f"catch-up-{client_order_id}-{filled}",
                }
            )
        event = CATCH_UP_STATUS.get(status)
        closing = event in ("canceled", "expired", "rejected") and not said.types & CLOSED_REPORTS
        if (event and client_order_id not in self.said and not updates) or closing:
            updates.append({"event": event, "order": order, "execution_id": f"catch-up-{client_order_id}-{event}"})
        return updates

    def report_for(self, update: dict[str, Any], now_ns: int) -> execution_pb2.ExecutionReport | None:
        """The report of one trade update (a dict in Alpaca's format), or None when it says nothing new: a fill
        whose id was reported, or that the broker's cumulative quantity has no room for (a catch-up reported it
        already); a status already said. A fill that arrives out of order (its cumulative below one already seen)
        is reported: every fill counts once, whatever the order of arrival."""
        event = str(update["event"]).split(".")[-1].lower()
        if event not in EVENT_TYPES:
            return None
        order = update["order"]
        client_order_id = order["client_order_id"]
        filled = _decimal(order.get("filled_qty"))
        said = self.said.get(client_order_id, Said())
        if event in FILLS:
            fill_id = str(update.get("execution_id") or f"{client_order_id}-{filled}")
            quantity = _decimal(update.get("qty")) or filled - said.quantity
            if fill_id in said.fill_ids or quantity <= 0 or said.quantity + quantity > max(said.broker_filled, filled):
                return None
        elif EVENT_TYPES[event] in said.types:
            return None
        side = common_pb2.ORDER_SIDE_BUY if str(order.get("side")).endswith("buy") else common_pb2.ORDER_SIDE_SELL
        report = execution_pb2.ExecutionReport(
            report_type=EVENT_TYPES[event],
            client_order_id=client_order_id,
            broker_order_id=str(order["id"]),
            symbol=order.get("symbol") or "",
            side=side,
            order_quantity=to_proto(_decimal(order.get("qty"))),
            filled_quantity=to_proto(filled),
            average_fill_price=to_proto(_decimal(order.get("filled_avg_price"))),
            reason=event,
            broker_ts=now_ns,
        )
        if event in FILLS:
            report.last_quantity.CopyFrom(to_proto(quantity))
            report.last_price.CopyFrom(to_proto(_decimal(update.get("price"))))
            report.fill_id = fill_id
        self._measure(client_order_id, event, filled, _decimal(order.get("filled_avg_price")), now_ns)
        return report

    def _measure(self, client_order_id: str, event: str, filled: Decimal, average: Decimal, now_ns: int) -> None:
        flight = self.inflight.get(client_order_id)
        if flight is None:
            return
        if event == "new" and not flight.accepted_ns:
            flight.accepted_ns = now_ns
        if event in ("fill", "partial_fill"):
            flight.first_fill_ns = flight.first_fill_ns or now_ns
            flight.last_fill_ns = now_ns
            flight.filled, flight.average_price = filled, average
        if event in TERMINAL:
            flight.done = True

    def quality(self, client_order_id: str) -> execution_pb2.ExecutionQualityMeasured | None:
        flight = self.inflight.get(client_order_id)
        if flight is None or not flight.done:
            return None
        del self.inflight[client_order_id]
        slippage = 0.0
        if flight.filled and flight.arrival_price:
            direction = 1 if flight.side == common_pb2.ORDER_SIDE_BUY else -1
            slippage = float((flight.average_price - flight.arrival_price) / flight.arrival_price * 10_000 * direction)
        return execution_pb2.ExecutionQualityMeasured(
            client_order_id=client_order_id,
            symbol=flight.symbol,
            submit_to_accept_ns=max(0, flight.accepted_ns - flight.submitted_ns) if flight.accepted_ns else 0,
            submit_to_first_fill_ns=max(0, flight.first_fill_ns - flight.submitted_ns) if flight.first_fill_ns else 0,
            submit_to_last_fill_ns=max(0, flight.last_fill_ns - flight.submitted_ns) if flight.last_fill_ns else 0,
            arrival_price=to_proto(flight.arrival_price),
            average_fill_price=to_proto(flight.average_price),
            slippage_bps=round(slippage, 4),
            fill_ratio=float(flight.filled / flight.quantity) if flight.quantity else 0.0,
        )
