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


@dataclass
class ExecutionEngine:
    """Dedupes trade updates (the broker may repeat or reorder them) and keeps what quality needs."""

    inflight: dict[str, InFlight] = field(default_factory=dict)
    seen_updates: set[tuple[str, str, str]] = field(default_factory=set)
    cumulative: dict[str, Decimal] = field(default_factory=dict)

    reported: dict[str, tuple[int, Decimal, Decimal]] = field(default_factory=dict)  # cid -> (type, filled, avg)
    # Ambiguous submits never resolved: never sent again, whatever command names them.
    unresolved: set[str] = field(default_factory=set)

    def remember(self, report: execution_pb2.ExecutionReport) -> None:
        """Fold a published report (at start-up, from execution.reports.v1) so catch-up knows what was said."""
        if report.refusal_code == E.REFUSAL_CODE_UNRESOLVED:
            self.unresolved.add(report.client_order_id)
            return
        filled = Decimal(report.filled_quantity.value or 0)
        previous = self.reported.get(report.client_order_id)
        if previous is None or filled >= previous[1]:
            self.reported[report.client_order_id] = (
                report.report_type,
                filled,
                Decimal(report.average_fill_price.value or 0),
            )
        if report.report_type in (E.EXECUTION_REPORT_TYPE_FILL, E.EXECUTION_REPORT_TYPE_PARTIAL_FILL):
            self.cumulative[report.client_order_id] = max(
                filled, self.cumulative.get(report.client_order_id, Decimal(0))
            )

    def catch_up_update(self, order: dict[str, Any]) -> dict[str, Any] | None:
        """A synthetic trade update for what the broker did while nobody listened (a fill, a cancel), or None."""
        client_order_id = order["client_order_id"]
        status = str(order.get("status")).split(".")[-1].lower()
        filled = _decimal(order.get("filled_qty"))
        average = _decimal(order.get("filled_avg_price"))
        _, said_filled, said_average = self.reported.get(client_order_id, (0, Decimal(0), Decimal(0)))
        if filled > said_filled:
            last_quantity = filled - said_filled
            last_price = ((average * filled - said_average * said_filled) / last_quantity).quantize(Decimal("0.0001"))
            event = "fill" if status == "filled" else "partial_fill"
            return {
                "event": event,
                "order": order,
                "qty": str(last_quantity),
                "price": str(last_price),
                "execution_id": f"catch-up-{client_order_id}-{filled}",
            }
        event = {
            "canceled": "canceled",
            "expired": "expired",
            "rejected": "rejected",
            "new": "new",
            "accepted": "new",
        }.get(status)
        if event and client_order_id not in self.reported:
            return {"event": event, "order": order, "execution_id": f"catch-up-{client_order_id}-{event}"}
        if event in ("canceled", "expired", "rejected") and self.reported[client_order_id][0] not in (
            E.EXECUTION_REPORT_TYPE_CANCELED,
            E.EXECUTION_REPORT_TYPE_EXPIRED,
            E.EXECUTION_REPORT_TYPE_REJECTED,
        ):
            return {"event": event, "order": order, "execution_id": f"catch-up-{client_order_id}-{event}"}
        return None

    def report_for(self, update: dict[str, Any], now_ns: int) -> execution_pb2.ExecutionReport | None:
        """The report of one trade update (a dict in Alpaca's format), or None for a duplicate or a stale update."""
        event = str(update["event"]).split(".")[-1].lower()
        order = update["order"]
        client_order_id = order["client_order_id"]
        filled = _decimal(order.get("filled_qty"))
        key = (client_order_id, event, str(update.get("execution_id") or filled))
        if key in self.seen_updates or event not in EVENT_TYPES:
            return None
        if event in ("fill", "partial_fill") and filled <= self.cumulative.get(client_order_id, Decimal(0)):
            return None  # an out-of-order or repeated fill: cumulative quantity did not grow
        self.seen_updates.add(key)
        if event in ("fill", "partial_fill"):
            self.cumulative[client_order_id] = filled
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
        if event in ("fill", "partial_fill"):
            report.last_quantity.CopyFrom(to_proto(_decimal(update.get("qty"))))
            report.last_price.CopyFrom(to_proto(_decimal(update.get("price"))))
            report.fill_id = str(update.get("execution_id") or f"{client_order_id}-{filled}")
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
