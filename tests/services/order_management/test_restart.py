"""order-management's restart over the real broker: the book is the fold of oms.events.v1 read_committed, so a
restarted instance rebuilds exactly the book the previous one had, and a crash half-way through an order's
transaction (its event written, its command not) leaves neither in the log."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from oms_service.app import transactional_id
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope
from trading_platform.ids import client_order_id
from trading_platform.messaging import ensure_topics

pytestmark = pytest.mark.integration
STRATEGY = "momentum"


def cid_of(signal: Any) -> str:
    return client_order_id(STRATEGY, signal.envelope.message_id, signal.symbol)


def event(cid: str, event_type: int, status: int) -> oms_pb2.OrderEvent:
    order = oms_pb2.Order(
        client_order_id=cid,
        symbol="AAPL",
        side=common_pb2.ORDER_SIDE_BUY,
        quantity=to_proto("10"),
        order_type=common_pb2.ORDER_TYPE_MARKET,
        status=status,
        filled_quantity=to_proto("0"),
    )
    return oms_pb2.OrderEvent(
        envelope=new_envelope("order-management"), event_type=event_type, client_order_id=cid, order=order
    )


async def test_a_restart_rebuilds_the_same_book_from_the_log(oms: Any) -> None:
    first = await oms.start()
    assert not first.trading_blocked  # the broker (empty) and the book (empty) agree
    aapl = await oms.signal("AAPL", 0.05)  # 50 shares at 100
    msft = await oms.signal("MSFT", -0.02)  # sell 20
    await oms.until(
        lambda: all(
            c in first.book.orders and first.book.orders[c].status == oms_pb2.ORDER_STATUS_SUBMITTED
            for c in (cid_of(aapl), cid_of(msft))
        ),
        "both orders submitted",
    )
    # The broker filled the AAPL order and works the MSFT one (reconciliation sees both, and the position).
    oms.execution.orders = [
        oms.execution.order(cid_of(aapl), "AAPL", common_pb2.ORDER_SIDE_BUY, "50", "50", "filled"),
        oms.execution.order(cid_of(msft), "MSFT", common_pb2.ORDER_SIDE_SELL, "20", "0", "new"),
    ]
    oms.execution.positions = {"AAPL": Decimal(50)}
    await oms.report(cid_of(aapl), "AAPL", execution_pb2.EXECUTION_REPORT_TYPE_NEW)
    await oms.report(cid_of(aapl), "AAPL", execution_pb2.EXECUTION_REPORT_TYPE_FILL, "50", "100.5")
    await oms.until(lambda: first.book.position_quantity("AAPL") == 50, "the fill in the book")
    await oms.stop(first)

    second = await oms.start()
    assert second.book.orders == first.book.orders
    assert second.book.positions == first.book.positions
    assert second.book.orders[cid_of(aapl)].status == oms_pb2.ORDER_STATUS_FILLED
    assert second.book.orders[cid_of(msft)].status == oms_pb2.ORDER_STATUS_SUBMITTED  # still working: as it was
    assert not second.trading_blocked  # rebuilt, then reconciled with the broker, before consuming
    # One command per order, each committed with its SUBMITTED event: nothing was sent again at the restart.
    commands = await oms.committed("oms.commands.v1")
    assert sorted(c.submit_order.client_order_id for c in commands) == sorted([cid_of(aapl), cid_of(msft)])


async def test_a_crash_between_the_event_and_its_command_leaves_neither(oms: Any) -> None:
    await ensure_topics(oms.kafka, ["oms.events.v1", "oms.commands.v1"], namespace=oms.namespace)
    # An instance that died half-way through an order: its transaction holds INITIALIZED and SUBMITTED, no command.
    crashed = AIOKafkaProducer(
        bootstrap_servers=oms.kafka, transactional_id=transactional_id(oms.namespace, False), enable_idempotence=True
    )
    await crashed.start()
    await crashed.begin_transaction()
    for kind, status in [
        (oms_pb2.ORDER_EVENT_TYPE_INITIALIZED, oms_pb2.ORDER_STATUS_INITIALIZED),
        (oms_pb2.ORDER_EVENT_TYPE_SUBMITTED, oms_pb2.ORDER_STATUS_SUBMITTED),
    ]:
        await crashed.send_and_wait(
            oms.namespace + "oms.events.v1", event("half", kind, status).SerializeToString(), key=b"half"
        )
    await crashed.stop()  # gone without committing or aborting (as a killed process)
    assert len(await oms.written("oms.events.v1")) == 2  # written...
    assert await oms.committed("oms.events.v1") == []  # ...but not visible: the transaction is still open

    app = await oms.start()  # the same transactional id: its start fences the dead producer and aborts its transaction
    assert "half" not in app.book.orders
    assert await oms.committed("oms.events.v1") == []
    assert await oms.committed("oms.commands.v1") == []
    await oms.stop(app)


async def test_a_restart_starts_from_the_latest_snapshot_and_replays_only_what_came_after(oms: Any) -> None:
    first = await oms.start()
    aapl = await oms.signal("AAPL", 0.05)
    await oms.until(lambda: cid_of(aapl) in first.book.orders, "the first order")
    # The broker filled it (reconciliation compares with the broker whether or not orders are open).
    oms.execution.orders = [oms.execution.order(cid_of(aapl), "AAPL", common_pb2.ORDER_SIDE_BUY, "50", "50", "filled")]
    oms.execution.positions = {"AAPL": Decimal(50)}
    await oms.report(cid_of(aapl), "AAPL", execution_pb2.EXECUTION_REPORT_TYPE_FILL, "50", "100.5")
    await oms.until(lambda: first.book.position_quantity("AAPL") == 50, "the fill in the book")
    await first.write_snapshot()
    covered = first.book.events_applied
    msft = await oms.signal("MSFT", -0.02)
    await oms.until(lambda: cid_of(msft) in first.book.orders, "an order after the snapshot")
    await oms.stop(first)
    snapshots = await oms.committed("oms.snapshots.v1")
    assert len(snapshots) == 1 and snapshots[0].events_applied == covered

    second = await oms.start()
    assert second.book.orders == first.book.orders
    assert second.book.positions == first.book.positions
    assert second.book.events_applied == first.book.events_applied
    assert second.snapshot_at_events == covered  # restored from the snapshot; only the later events were replayed
    assert second.event_offsets == first.event_offsets
    await oms.stop(second)
