"""Orders and positions of record: the order state machine, positions and P&L, and sizing. Pure, no I/O.

The state is a fold of OrderEvents (oms.events.v1): `apply(event)` is the only way it changes, so a restarted service
that replays the topic rebuilds exactly the same orders and positions (invariant 4 of docs/architecture.md). Every event
records the message that caused it (envelope.causation_id); the set of those ids is what makes handling idempotent."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Protocol

from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading.signal.v1 import signal_pb2
from trading_platform.decimals import from_proto, to_proto
from trading_platform.ids import client_order_id

S = oms_pb2
T = oms_pb2
ZERO = Decimal(0)
# What a snapshot keeps besides every open order and every position: the latest terminal orders and handled ids.
SNAPSHOT_TERMINAL_ORDERS = 1_000
SNAPSHOT_HANDLED_IDS = 5_000
# Average prices keep 10 decimal places; realised P&L is then exact for every fill at a cent or sub-cent price.
PRICE_STEP = Decimal("0.0000000001")
TERMINAL = {
    S.ORDER_STATUS_DENIED,
    S.ORDER_STATUS_REJECTED,
    S.ORDER_STATUS_FILLED,
    S.ORDER_STATUS_CANCELED,
    S.ORDER_STATUS_EXPIRED,
}
OPEN = {
    S.ORDER_STATUS_INITIALIZED,
    S.ORDER_STATUS_SUBMITTED,
    S.ORDER_STATUS_ACCEPTED,
    S.ORDER_STATUS_PARTIALLY_FILLED,
    S.ORDER_STATUS_PENDING_CANCEL,
}
TRANSITIONS: dict[int, set[int]] = {
    S.ORDER_STATUS_INITIALIZED: {S.ORDER_STATUS_DENIED, S.ORDER_STATUS_SUBMITTED},
    S.ORDER_STATUS_SUBMITTED: {
        S.ORDER_STATUS_ACCEPTED,
        S.ORDER_STATUS_REJECTED,
        S.ORDER_STATUS_PARTIALLY_FILLED,
        S.ORDER_STATUS_FILLED,
        S.ORDER_STATUS_CANCELED,
        S.ORDER_STATUS_EXPIRED,
        S.ORDER_STATUS_PENDING_CANCEL,
    },
    S.ORDER_STATUS_ACCEPTED: {
        S.ORDER_STATUS_PARTIALLY_FILLED,
        S.ORDER_STATUS_FILLED,
        S.ORDER_STATUS_CANCELED,
        S.ORDER_STATUS_EXPIRED,
        S.ORDER_STATUS_PENDING_CANCEL,
        S.ORDER_STATUS_REJECTED,
    },
    S.ORDER_STATUS_PARTIALLY_FILLED: {
        S.ORDER_STATUS_PARTIALLY_FILLED,
        S.ORDER_STATUS_FILLED,
        S.ORDER_STATUS_CANCELED,
        S.ORDER_STATUS_EXPIRED,
        S.ORDER_STATUS_PENDING_CANCEL,
    },
    S.ORDER_STATUS_PENDING_CANCEL: {
        S.ORDER_STATUS_CANCELED,
        S.ORDER_STATUS_FILLED,
        S.ORDER_STATUS_PARTIALLY_FILLED,
        S.ORDER_STATUS_ACCEPTED,
        S.ORDER_STATUS_EXPIRED,
    },
}
EVENT_FOR_STATUS = {
    S.ORDER_STATUS_INITIALIZED: T.ORDER_EVENT_TYPE_INITIALIZED,
    S.ORDER_STATUS_DENIED: T.ORDER_EVENT_TYPE_DENIED,
    S.ORDER_STATUS_SUBMITTED: T.ORDER_EVENT_TYPE_SUBMITTED,
    S.ORDER_STATUS_ACCEPTED: T.ORDER_EVENT_TYPE_ACCEPTED,
    S.ORDER_STATUS_REJECTED: T.ORDER_EVENT_TYPE_REJECTED,
    S.ORDER_STATUS_PARTIALLY_FILLED: T.ORDER_EVENT_TYPE_PARTIALLY_FILLED,
    S.ORDER_STATUS_FILLED: T.ORDER_EVENT_TYPE_FILLED,
    S.ORDER_STATUS_PENDING_CANCEL: T.ORDER_EVENT_TYPE_PENDING_CANCEL,
    S.ORDER_STATUS_CANCELED: T.ORDER_EVENT_TYPE_CANCELED,
    S.ORDER_STATUS_EXPIRED: T.ORDER_EVENT_TYPE_EXPIRED,
}
REPORT_STATUS = {
    execution_pb2.EXECUTION_REPORT_TYPE_NEW: S.ORDER_STATUS_ACCEPTED,
    execution_pb2.EXECUTION_REPORT_TYPE_PARTIAL_FILL: S.ORDER_STATUS_PARTIALLY_FILLED,
    execution_pb2.EXECUTION_REPORT_TYPE_FILL: S.ORDER_STATUS_FILLED,
    execution_pb2.EXECUTION_REPORT_TYPE_CANCELED: S.ORDER_STATUS_CANCELED,
    execution_pb2.EXECUTION_REPORT_TYPE_REPLACED: S.ORDER_STATUS_CANCELED,
    execution_pb2.EXECUTION_REPORT_TYPE_EXPIRED: S.ORDER_STATUS_EXPIRED,
    execution_pb2.EXECUTION_REPORT_TYPE_REJECTED: S.ORDER_STATUS_REJECTED,
    execution_pb2.EXECUTION_REPORT_TYPE_PENDING_CANCEL: S.ORDER_STATUS_PENDING_CANCEL,
}


class IllegalTransition(ValueError):
    pass


# Broker order statuses (Alpaca's) after which nothing more happens to an order.
BROKER_CLOSED = {"filled", "canceled", "expired", "replaced", "rejected", "done_for_day"}


@dataclass
class Reconciliation:
    """The book compared with the broker: definite mismatches; discrepancies a message in flight may explain
    (keyed, so the caller can tell how long each has lasted); and the open orders on each side."""

    mismatches: list[str]
    pending: dict[str, str]
    open_orders: int
    broker_open_orders: int


# The prices each order type takes (a trailing stop takes exactly one of its two).
PRICES_OF_TYPE = {
    common_pb2.ORDER_TYPE_MARKET: (),
    common_pb2.ORDER_TYPE_LIMIT: ("limit_price",),
    common_pb2.ORDER_TYPE_STOP: ("stop_price",),
    common_pb2.ORDER_TYPE_STOP_LIMIT: ("stop_price", "limit_price"),
    common_pb2.ORDER_TYPE_TRAILING_STOP: ("trail_price|trail_percent",),
}
PRICE_FIELDS = ("limit_price", "stop_price", "trail_price", "trail_percent")


@dataclass(frozen=True)
class OrderTerms:
    """How an order is to be worked at the broker: its type, its prices and its time in force."""

    order_type: int = common_pb2.ORDER_TYPE_MARKET
    time_in_force: int = common_pb2.TIME_IN_FORCE_DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None

    @classmethod
    def of(cls, request: oms_pb2.SubmitOrderRequest) -> OrderTerms:
        """The terms a request asks for; an unspecified type is a market order, an unspecified time in force DAY."""
        return cls(
            request.order_type or common_pb2.ORDER_TYPE_MARKET,
            request.time_in_force or common_pb2.TIME_IN_FORCE_DAY,
            *(from_proto(getattr(request, name), None) for name in PRICE_FIELDS),
        )

    def problem(self) -> str | None:
        """What is wrong with these terms, naming the field, or None."""
        if self.order_type not in PRICES_OF_TYPE:
            return f"order_type {self.order_type} is not an order type"
        if self.time_in_force not in common_pb2.TimeInForce.values() or not self.time_in_force:
            return f"time_in_force {self.time_in_force} is not a time in force"
        type_name = common_pb2.OrderType.Name(self.order_type)
        wanted = PRICES_OF_TYPE[self.order_type]
        for name in PRICE_FIELDS:
            value = getattr(self, name)
            if value is not None and value <= 0:
                return f"{name} must be positive, not {value}"
            if value is not None and not any(name in need.split("|") for need in wanted):
                return f"{name} is given, but a {type_name} order takes none"
        for need in wanted:
            given = [name for name in need.split("|") if getattr(self, name) is not None]
            if len(given) != 1:
                return f"a {type_name} order needs {' or '.join(need.split('|'))}" + (
                    " (exactly one)" if "|" in need else ""
                )
        return None


class Sizing(Protocol):
    """How signals are sized into orders: OmsConfig (TRADING_OMS__LOT_SIZE, __MIN_ORDER_QUANTITY, and so on)."""

    lot_size: Decimal
    min_order_quantity: Decimal
    min_order_notional: Decimal


def new_order(
    cid: str,
    symbol: str,
    delta: Decimal,
    lineage: oms_pb2.OrderLineage,
    terms: OrderTerms = OrderTerms(),
    now_ns: int = 0,
) -> oms_pb2.Order:
    """The INITIALIZED order that trades `delta` (signed: a buy when positive) of symbol on these terms."""
    return oms_pb2.Order(
        client_order_id=cid,
        symbol=symbol,
        side=common_pb2.ORDER_SIDE_BUY if delta > 0 else common_pb2.ORDER_SIDE_SELL,
        quantity=to_proto(abs(delta)),
        order_type=terms.order_type,
        time_in_force=terms.time_in_force,
        limit_price=to_proto(terms.limit_price),
        stop_price=to_proto(terms.stop_price),
        trail_price=to_proto(terms.trail_price),
        trail_percent=to_proto(terms.trail_percent),
        status=S.ORDER_STATUS_INITIALIZED,
        filled_quantity=to_proto(0),
        lineage=lineage,
        created_at=now_ns,
        updated_at=now_ns,
    )


def check_request(order: oms_pb2.Order, reference_price: Decimal, dry_run: bool = False) -> risk_pb2.CheckOrderRequest:
    """Risk's question about an order (the caller sets its envelope)."""
    return risk_pb2.CheckOrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        limit_price=order.limit_price,
        reference_price=to_proto(reference_price),
        strategy_id=order.lineage.strategy_id,
        dry_run=dry_run,
    )


@dataclass
class PositionState:
    symbol: str
    quantity: Decimal = ZERO
    average_entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    market_price: Decimal = ZERO

    def fill(self, side: int, quantity: Decimal, price: Decimal) -> None:
        if quantity <= 0:
            return  # a report that fills nothing moves nothing (and must not divide by zero)
        signed = quantity if side == common_pb2.ORDER_SIDE_BUY else -quantity
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            total = self.quantity + signed
            average = (self.average_entry_price * abs(self.quantity) + price * quantity) / abs(total)
            self.average_entry_price = average.quantize(PRICE_STEP)
            self.quantity = total
        else:
            closing = min(abs(signed), abs(self.quantity))
            direction = Decimal(1) if self.quantity > 0 else Decimal(-1)
            self.realized_pnl += (price - self.average_entry_price) * closing * direction
            self.quantity += signed
            if self.quantity == 0:
                self.average_entry_price = ZERO
            elif (self.quantity > 0) != (direction > 0):
                self.average_entry_price = price
        self.market_price = price

    @property
    def unrealized_pnl(self) -> Decimal:
        return (self.market_price - self.average_entry_price) * self.quantity if self.quantity else ZERO

    def to_proto(self) -> oms_pb2.Position:
        return oms_pb2.Position(
            symbol=self.symbol,
            quantity=to_proto(self.quantity),
            average_entry_price=to_proto(self.average_entry_price),
            realized_pnl=to_proto(self.realized_pnl),
            unrealized_pnl=to_proto(self.unrealized_pnl),
            market_price=to_proto(self.market_price),
        )


@dataclass
class OrderBook:
    orders: dict[str, oms_pb2.Order] = field(default_factory=dict)
    positions: dict[str, PositionState] = field(default_factory=dict)
    handled_message_ids: set[str] = field(default_factory=set)
    events_applied: int = 0
    recent_handled: deque[str] = field(default_factory=lambda: deque(maxlen=SNAPSHOT_HANDLED_IDS))

    # -- the fold ----------------------------------------------------------------------------------------------
    def apply(self, event: oms_pb2.OrderEvent) -> None:
        if event.envelope.causation_id:
            if event.envelope.causation_id not in self.handled_message_ids:
                self.recent_handled.append(event.envelope.causation_id)
            self.handled_message_ids.add(event.envelope.causation_id)
        self.events_applied += 1
        if event.event_type == T.ORDER_EVENT_TYPE_TRANSITION_REJECTED:
            return
        order = oms_pb2.Order()
        order.CopyFrom(event.order)
        self.orders[event.client_order_id] = order
        if event.event_type in (T.ORDER_EVENT_TYPE_PARTIALLY_FILLED, T.ORDER_EVENT_TYPE_FILLED) and event.fill_id:
            position = self.positions.setdefault(order.symbol, PositionState(order.symbol))
            position.fill(order.side, from_proto(event.last_quantity) or ZERO, from_proto(event.last_price) or ZERO)

    def apply_all(self, events: Iterable[oms_pb2.OrderEvent]) -> None:
        """Fold events read from several partitions of oms.events.v1 in the order they were applied (their envelope's
        ts_init, stamped right before each is recorded; one symbol's events are recorded one at a time). Partition
        by partition, the fills of one symbol's orders (whose ids hash to different partitions) would pass each
        other, and the average entry price and realised P&L depend on their order."""
        for event in sorted(events, key=lambda e: e.envelope.ts_init):
            self.apply(event)

    # -- snapshots ---------------------------------------------------------------------------------------------
    def snapshot(self, event_offsets: dict[int, int]) -> oms_pb2.OrderBookSnapshot:
        """The book as a snapshot covering the events before `event_offsets` (per partition of oms.events.v1): every
        open order and position, the latest terminal orders and handled ids (the fold's dict keeps event order)."""
        terminal = [cid for cid, order in self.orders.items() if order.status not in OPEN]
        dropped = set(terminal[: max(0, len(terminal) - SNAPSHOT_TERMINAL_ORDERS)])
        return oms_pb2.OrderBookSnapshot(
            orders=[order for cid, order in self.orders.items() if cid not in dropped],
            positions=[
                oms_pb2.Position(
                    symbol=position.symbol,
                    quantity=to_proto(position.quantity),
                    average_entry_price=to_proto(position.average_entry_price),
                    realized_pnl=to_proto(position.realized_pnl),
                    market_price=to_proto(position.market_price),
                )
                for position in self.positions.values()
            ],
            event_offsets=event_offsets,
            handled_message_ids=list(self.recent_handled),
            events_applied=self.events_applied,
        )

    @classmethod
    def restored(cls, snapshot: oms_pb2.OrderBookSnapshot) -> OrderBook:
        """The book a snapshot describes; apply() the events after its offsets to bring it up to date."""
        book = cls(events_applied=snapshot.events_applied)
        for order in snapshot.orders:
            copy = oms_pb2.Order()
            copy.CopyFrom(order)
            book.orders[order.client_order_id] = copy
        for position in snapshot.positions:
            book.positions[position.symbol] = PositionState(
                position.symbol,
                from_proto(position.quantity) or ZERO,
                from_proto(position.average_entry_price) or ZERO,
                from_proto(position.realized_pnl) or ZERO,
                from_proto(position.market_price) or ZERO,
            )
        book.recent_handled.extend(snapshot.handled_message_ids)
        book.handled_message_ids.update(snapshot.handled_message_ids)
        return book

    # -- decisions ---------------------------------------------------------------------------------------------
    def open_quantity(self, symbol: str) -> Decimal:
        """Signed quantity still working at the broker (or about to be) for a symbol."""
        total = ZERO
        for order in self.orders.values():
            if order.symbol == symbol and order.status in OPEN:
                remaining = (from_proto(order.quantity) or ZERO) - (from_proto(order.filled_quantity) or ZERO)
                total += remaining if order.side == common_pb2.ORDER_SIDE_BUY else -remaining
        return total

    def position_quantity(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        return position.quantity if position else ZERO

    def order_delta(
        self,
        symbol: str,
        target_weight: float,
        equity: Decimal,
        price: Decimal,
        lot: Decimal,
        min_quantity: Decimal,
        min_notional: Decimal,
    ) -> Decimal:
        """Signed quantity to trade to move to the target weight; 0 when already there (or too small to bother), and
        0 when equity is zero or less: an account with nothing sizes nothing (it does not sell out either)."""
        if price <= 0 or equity <= 0:
            return ZERO
        weight = Decimal(repr(max(-1.0, min(1.0, target_weight))))
        target = (weight * equity / price / lot).to_integral_value(rounding=ROUND_DOWN) * lot
        delta = target - self.position_quantity(symbol) - self.open_quantity(symbol)
        if abs(delta) < min_quantity or abs(delta) * price < min_notional:
            return ZERO
        return delta

    def order_for_signal(
        self, signal: signal_pb2.SignalGenerated, equity: Decimal, sizing: Sizing, now_ns: int = 0
    ) -> oms_pb2.Order | None:
        """order-management's one step from a signal to an order (the service takes it, and `tradectl replay`): the
        INITIALIZED market DAY order that moves the symbol to the signal's target weight at its reference price, or
        None when there is nothing to trade (there already, or too small) or the signal was placed before (its client
        order id, derived from the signal's id, is in the book)."""
        delta = self.order_delta(
            signal.symbol,
            signal.target_weight,
            equity,
            from_proto(signal.reference_price) or ZERO,
            sizing.lot_size,
            sizing.min_order_quantity,
            sizing.min_order_notional,
        )
        if delta == 0:
            return None
        cid = client_order_id(signal.strategy_id or "default", signal.envelope.message_id, signal.symbol)
        if cid in self.orders:
            return None
        lineage = oms_pb2.OrderLineage(
            signal_id=signal.envelope.message_id,
            strategy_id=signal.strategy_id,
            model_version=signal.model_version,
            feature_hash=signal.feature_hash,
        )
        return new_order(cid, signal.symbol, delta, lineage, now_ns=now_ns)

    def transition(self, client_order_id: str, status: int) -> oms_pb2.Order:
        """The order after moving to status, or IllegalTransition (the state machine of docs/architecture.md)."""
        current = self.orders.get(client_order_id)
        if current is None:
            raise IllegalTransition(f"unknown order {client_order_id}")
        if status not in TRANSITIONS.get(current.status, set()):
            raise IllegalTransition(
                f"{client_order_id}: {S.OrderStatus.Name(current.status)} -> "
                f"{S.OrderStatus.Name(status)} is not allowed"
            )
        updated = oms_pb2.Order()
        updated.CopyFrom(current)
        updated.status = status
        return updated

    def event_for_report(self, report: execution_pb2.ExecutionReport) -> oms_pb2.OrderEvent | None:
        """The OrderEvent a report leads to (without envelope), a TRANSITION_REJECTED event, or None to ignore.

        Every fill counts exactly once, by its fill id, whatever the order of arrival: a fill reported after the
        order reached a terminal status (a partial fill behind its cancel, an earlier partial behind the final
        fill) still moves the position and the filled quantity, and the order keeps its status."""
        status = REPORT_STATUS.get(report.report_type)
        current = self.orders.get(report.client_order_id)
        if report.report_type == execution_pb2.EXECUTION_REPORT_TYPE_CANCEL_REJECTED and current is not None:
            return oms_pb2.OrderEvent(
                event_type=T.ORDER_EVENT_TYPE_CANCEL_REJECTED,
                client_order_id=report.client_order_id,
                order=current,
                reason=report.reason,
            )
        if status is None:
            return None  # pending_new, done_for_day: nothing changes
        if current is None:
            return oms_pb2.OrderEvent(
                event_type=T.ORDER_EVENT_TYPE_TRANSITION_REJECTED,
                client_order_id=report.client_order_id,
                reason=f"report {report.report_type} for an order this OMS does not know",
            )
        fill = bool(report.fill_id) and status in (S.ORDER_STATUS_PARTIALLY_FILLED, S.ORDER_STATUS_FILLED)
        if fill and report.fill_id in current.fill_ids:
            return None  # this fill is already applied
        if not fill and status == current.status and status != S.ORDER_STATUS_PARTIALLY_FILLED:
            return None  # a repeated status report
        reason = report.reason
        try:
            order = self.transition(report.client_order_id, status)
        except IllegalTransition as error:
            if not fill:
                return oms_pb2.OrderEvent(
                    event_type=T.ORDER_EVENT_TYPE_TRANSITION_REJECTED,
                    client_order_id=report.client_order_id,
                    order=current,
                    reason=str(error),
                )
            order = oms_pb2.Order()
            order.CopyFrom(current)
            reason = f"fill counted after {S.OrderStatus.Name(current.status)}; the status stays"
        if report.broker_order_id:
            order.lineage.broker_order_id = report.broker_order_id
        event = oms_pb2.OrderEvent(
            event_type=EVENT_FOR_STATUS[status], client_order_id=report.client_order_id, reason=reason
        )
        if fill:
            quantity = from_proto(report.last_quantity) or ZERO
            price = from_proto(report.last_price) or ZERO
            before = from_proto(order.filled_quantity) or ZERO
            filled = before + quantity
            if filled > 0:
                average = ((from_proto(order.average_fill_price) or ZERO) * before + price * quantity) / filled
                order.average_fill_price.CopyFrom(to_proto(average.quantize(PRICE_STEP)))
            order.filled_quantity.CopyFrom(to_proto(filled))
            order.fill_ids.append(report.fill_id)
            event.last_quantity.CopyFrom(report.last_quantity)
            event.last_price.CopyFrom(report.last_price)
            event.fill_id = report.fill_id
        order.updated_at = report.broker_ts or order.updated_at
        event.order.CopyFrom(order)
        return event

    def mark(self, symbol: str, price: Decimal) -> None:
        position = self.positions.get(symbol)
        if position is not None:
            position.market_price = price

    def reconcile(
        self,
        broker_positions: dict[str, Decimal],
        tolerance: Decimal,
        in_flight: dict[str, Decimal] | None = None,
    ) -> list[str]:
        """Differences between the positions of record and the broker's, as readable lines. in_flight: per symbol,
        the signed quantity the broker has filled on our orders that no report has brought here yet."""
        in_flight = in_flight or {}
        mismatches = []
        symbols = set(broker_positions) | set(in_flight) | {s for s, p in self.positions.items() if p.quantity}
        for symbol in sorted(symbols):
            ours = self.position_quantity(symbol)
            coming = in_flight.get(symbol, ZERO)
            theirs = broker_positions.get(symbol, ZERO)
            if abs(ours + coming - theirs) > tolerance:
                detail = f" (+ {coming} filled at the broker and not yet reported)" if coming else ""
                mismatches.append(f"{symbol}: order-management has {ours}{detail}, the broker has {theirs}")
        return mismatches

    def reconcile_with_orders(
        self,
        broker_positions: dict[str, Decimal],
        broker_orders: Sequence[execution_pb2.BrokerOrder],
        tolerance: Decimal,
        orders_complete: bool = True,
    ) -> Reconciliation:
        """Compare the book with the broker: positions, accounting for fills on our orders the broker has made and
        no report has brought yet (open orders do not stop the check), and the broker's open orders with ours.

        Definite mismatches: a position that differs beyond what is in flight; an open order at the broker that the
        book does not know. Pending (a message in flight may explain them; the caller counts them as mismatches once
        they last): an order open on one side and closed or absent on the other. orders_complete=False (the broker's
        list was cut at its limit) skips the orders the broker does not list."""
        broker_open = 0
        in_flight: dict[str, Decimal] = {}
        pending: dict[str, str] = {}
        listed: set[str] = set()
        mismatches: list[str] = []
        for broker in broker_orders:
            cid = broker.client_order_id
            listed.add(cid)
            is_open = broker.status.split(".")[-1].lower() not in BROKER_CLOSED
            broker_open += is_open
            ours = self.orders.get(cid)
            if ours is None:
                if is_open:
                    mismatches.append(f"{cid}: open at the broker ({broker.status}), unknown to order-management")
                continue
            coming = (from_proto(broker.filled_quantity) or ZERO) - (from_proto(ours.filled_quantity) or ZERO)
            if coming:
                signed = coming if ours.side == common_pb2.ORDER_SIDE_BUY else -coming
                in_flight[ours.symbol] = in_flight.get(ours.symbol, ZERO) + signed
            ours_open = ours.status in OPEN
            if is_open != ours_open:
                pending[cid] = (
                    f"{cid}: {S.OrderStatus.Name(ours.status)} at order-management, {broker.status} at the broker"
                )
        open_here = [cid for cid, order in self.orders.items() if order.status in OPEN]
        for cid in open_here:
            if cid not in listed and orders_complete and self.orders[cid].status != S.ORDER_STATUS_INITIALIZED:
                pending[cid] = (
                    f"{cid}: {S.OrderStatus.Name(self.orders[cid].status)} at order-management, not at the broker"
                )
        mismatches = self.reconcile(broker_positions, tolerance, in_flight) + mismatches
        return Reconciliation(mismatches, pending, len(open_here), broker_open)
