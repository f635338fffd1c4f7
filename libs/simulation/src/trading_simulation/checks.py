"""What must hold after every run, each violation a line that starts with the invariant's name.

- approval: no order reached the broker without an approved risk decision naming its client order id with the same
  symbol, side and quantity (invariant 1 of docs/architecture.md).
- duplicate-submit: no client order id was posted again by the execution instance that had already landed it, and
  none landed twice (invariant 2: an ambiguous submit is resolved by lookup, never by posting blindly).
- positions: once things are quiet, the positions of record equal the broker's (invariant 4).
- fills: every fill counts exactly once: per order, what order-management recorded equals what the broker filled.
- rebuild: a rebuilt order-management equals the one that crashed (checked at every crash between transactions,
  and at the end against the log, from the beginning and from the latest snapshot).
- refused: no order execution reported REJECTED (refused: no approval in time, stream down, too old, ...) is at the
  broker: order-management closes a refused order and may trade again in its place (invariant 5, fail closed).
- quiet: the run came to rest (every record and update delivered, the broker with no open order, the stream up).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from oms_service.engine import OPEN, OrderBook
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.decimals import from_proto

from trading_simulation.bus import Bus

if TYPE_CHECKING:
    from trading_simulation.world import World

SIDES = {"buy": common_pb2.ORDER_SIDE_BUY, "sell": common_pb2.ORDER_SIDE_SELL}
FILL_EVENTS = {oms_pb2.ORDER_EVENT_TYPE_PARTIALLY_FILLED, oms_pb2.ORDER_EVENT_TYPE_FILLED}


def folded_book(bus: Bus) -> OrderBook:
    """The book the whole committed oms.events.v1 folds into (the real engine's fold)."""
    book = OrderBook()
    book.apply_all(m.value for m in bus.committed_messages("oms.events.v1"))  # type: ignore[misc]
    return book


def snapshot_book(bus: Bus) -> OrderBook | None:
    """The book the latest snapshot plus the events after it give, as order-management's start builds it."""
    snapshots = list(bus.committed_messages("oms.snapshots.v1"))
    if not snapshots:
        return None
    snapshot: Any = snapshots[-1].value
    book = OrderBook.restored(snapshot)
    offsets = dict(snapshot.event_offsets)
    book.apply_all(
        m.value  # type: ignore[misc]
        for m in bus.committed_messages("oms.events.v1")
        if m.offset >= offsets.get(m.partition, 0)
    )
    return book


def _state(book: OrderBook) -> tuple[dict[str, bytes], dict[str, tuple[Decimal, Decimal, Decimal]]]:
    orders = {cid: order.SerializeToString(deterministic=True) for cid, order in book.orders.items()}
    positions = {
        s: (p.quantity, p.average_entry_price, p.realized_pnl)
        for s, p in book.positions.items()
        if p.quantity or p.realized_pnl
    }
    return orders, positions


def compare_books(live: OrderBook, rebuilt: OrderBook, orders_of: set[str] | None = None) -> str:
    """'' when the books hold the same orders and positions; else what differs, briefly."""
    live_orders, live_positions = _state(live)
    rebuilt_orders, rebuilt_positions = _state(rebuilt)
    if orders_of is not None:
        live_orders = {k: v for k, v in live_orders.items() if k in orders_of}
        rebuilt_orders = {k: v for k, v in rebuilt_orders.items() if k in orders_of}
    problems = []
    for cid in sorted(set(live_orders) | set(rebuilt_orders)):
        if live_orders.get(cid) != rebuilt_orders.get(cid):
            ours, theirs = live.orders.get(cid), rebuilt.orders.get(cid)
            problems.append(
                f"order {cid}: {_status(ours)} filled {_filled(ours)} "
                f"vs rebuilt {_status(theirs)} filled {_filled(theirs)}"
            )
    if live_positions != rebuilt_positions:
        problems.append(f"positions {live_positions} vs rebuilt {rebuilt_positions}")
    return "; ".join(problems)


def _status(order: oms_pb2.Order | None) -> str:
    return oms_pb2.OrderStatus.Name(order.status) if order is not None else "absent"


def _filled(order: oms_pb2.Order | None) -> str:
    return str(from_proto(order.filled_quantity) or 0) if order is not None else "-"


def check(world: World, quiet: bool) -> list[str]:
    violations: list[str] = []
    bus, exchange = world.bus, world.exchange
    # approval
    approvals: dict[str, set[tuple[str, int, Decimal]]] = defaultdict(set)
    for message in bus.committed_messages("risk.decisions.v1"):
        decision: Any = message.value
        if decision.approved:
            approvals[decision.client_order_id].add(
                (decision.symbol, decision.side, from_proto(decision.quantity) or Decimal(0))
            )
    for post in world.broker.posts:
        if post.landed and (post.symbol, SIDES[post.side], post.qty) not in approvals.get(post.client_order_id, set()):
            named = sorted(
                (s, common_pb2.OrderSide.Name(side), str(q)) for s, side, q in approvals[post.client_order_id]
            )
            violations.append(
                f"approval: {post.client_order_id} reached the broker as {post.side} {post.qty} {post.symbol}; "
                f"the approvals naming it: {named or 'none'}"
            )
    # duplicate-submit
    landed_by: dict[str, str] = {}
    landed_count: dict[str, int] = defaultdict(int)
    for post in world.broker.posts:
        if post.landed:
            landed_count[post.client_order_id] += 1
            landed_by[post.client_order_id] = post.incarnation
        elif landed_by.get(post.client_order_id) == post.incarnation:
            violations.append(
                f"duplicate-submit: {post.client_order_id} posted again by {post.incarnation}, which had landed it"
            )
    for cid, count in landed_count.items():
        if count > 1:
            violations.append(f"duplicate-submit: {cid} landed {count} times at the broker")
    # refused: execution told order-management it would not send an order that is at the broker
    refused: dict[str, str] = {}
    for message in bus.committed_messages("execution.reports.v1"):
        report: Any = message.value
        if report.report_type == execution_pb2.EXECUTION_REPORT_TYPE_REJECTED and report.refusal_code:
            refused.setdefault(report.client_order_id, report.reason)
    for cid in sorted(set(refused) & {p.client_order_id for p in world.broker.posts if p.landed}):
        violations.append(f"refused: execution reported {cid} REJECTED ({refused[cid]}), and it is at the broker")
    if not quiet:
        violations.append("quiet: the run did not come to rest (records, updates or open broker orders remain)")
    oms = world.components["order-management"].app
    if oms is None or not world.components["order-management"].ready:
        return [*violations, "quiet: order-management is not running at the end"]
    book: OrderBook = oms.book
    # positions
    broker_positions = {s: p.qty for s, p in exchange.positions.items() if p.qty}
    ours = {s: p.quantity for s, p in book.positions.items() if p.quantity}
    if quiet and broker_positions != ours:
        violations.append(f"positions: order-management has {_fmt(ours)}, the broker has {_fmt(broker_positions)}")
    # fills
    counted: dict[str, Decimal] = defaultdict(Decimal)
    fill_ids: dict[str, list[str]] = defaultdict(list)
    for message in bus.committed_messages("oms.events.v1"):
        event: Any = message.value
        if event.event_type in FILL_EVENTS and event.fill_id:
            counted[event.client_order_id] += from_proto(event.last_quantity) or Decimal(0)
            fill_ids[event.client_order_id].append(event.fill_id)
    for cid, ids in fill_ids.items():
        if len(ids) != len(set(ids)):
            violations.append(f"fills: {cid} has a fill recorded twice ({sorted(ids)})")
    for cid in sorted(set(counted) | set(exchange.by_client_id)):
        order = exchange.by_client_id.get(cid)
        broker_filled = order.filled_qty if order is not None else Decimal(0)
        record = book.orders.get(cid)
        recorded = from_proto(record.filled_quantity) or Decimal(0) if record is not None else Decimal(0)
        if quiet and (counted.get(cid, Decimal(0)) != broker_filled or recorded != broker_filled):
            violations.append(
                f"fills: {cid} broker filled {broker_filled}, order-management's events count "
                f"{counted.get(cid, Decimal(0))} and its order says {recorded} ({_status(record)})"
            )
    if quiet:
        stuck = sorted(cid for cid, o in book.orders.items() if o.status in OPEN)
        if stuck:
            violations.append(f"quiet: order-management still has open orders {stuck}")
    # rebuild
    violations.extend(world.crash_checks)
    if not oms.recovering and getattr(oms.publisher, "_open", None) is None:
        difference = compare_books(book, folded_book(bus))
        if difference:
            violations.append(f"rebuild: the running book differs from the fold of its log: {difference}")
        restored = snapshot_book(bus)
        if restored is not None:
            full = folded_book(bus)
            open_or_recent = set(restored.orders)
            difference = compare_books(full, restored, orders_of=open_or_recent)
            if difference:
                violations.append(f"rebuild: snapshot + events differ from the whole log's fold: {difference}")
    return violations


def _fmt(positions: dict[str, Decimal]) -> str:
    return ", ".join(f"{s} {q}" for s, q in sorted(positions.items())) or "nothing"
