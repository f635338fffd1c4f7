"""A publish that fails on the real broker (the broker refuses the order's command, or its events, as too large for
the topic) aborts the order's transaction: nothing of the order is visible to a read_committed reader, nothing of it
stays in the book (no quantity counts as open), a manual order is cleanly refused, and once the broker takes writes
again the order goes through exactly once: a manual order asked again, a signal delivered again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.decimals import to_proto
from trading_platform.ids import client_order_id

pytestmark = pytest.mark.integration
STRATEGY = "momentum"
MAX_BYTES = 128  # above a transaction marker (78 bytes), below any order event or command (with its headers)


def of_order(messages: list[Any], cid: str) -> list[str]:
    names = []
    for message in messages:
        if isinstance(message, oms_pb2.OrderEvent) and message.client_order_id == cid:
            names.append(oms_pb2.OrderEventType.Name(message.event_type))
        elif isinstance(message, oms_pb2.OrderCommand) and message.submit_order.client_order_id == cid:
            names.append("command")
    return names


@asynccontextmanager
async def refusing_writes(bootstrap: str, physical_topic: str) -> AsyncIterator[Callable[[], Any]]:
    """The broker refuses every record batch of the platform's written to the topic until the returned function (or
    the end of the block) restores the topic's own limit. The limit (MAX_BYTES) still lets the broker write its own
    transaction markers (a control batch is 78 bytes): below that, the coordinator fails to write the abort marker
    (RecordTooLargeException, fatal to it), the transaction stays in PrepareAbort for as long as the broker runs,
    and the transactional id and the partition's last stable offset never move again, whatever a client does."""
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def alter(operation: AlterConfigOpType, value: str | None = None) -> None:
        entry = ConfigEntry("max.message.bytes", value, incremental_operation=operation)
        resource = ConfigResource("TOPIC", physical_topic, incremental_configs=[entry])
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(timeout=10)

    restored = False

    async def restore() -> None:
        nonlocal restored
        if not restored:
            restored = True
            await asyncio.to_thread(alter, AlterConfigOpType.DELETE)
            await asyncio.sleep(1.0)  # every broker applies the topic's config

    await asyncio.to_thread(alter, AlterConfigOpType.SET, str(MAX_BYTES))
    await asyncio.sleep(1.0)
    try:
        yield restore
    finally:
        await restore()


@pytest.mark.parametrize("refused", ["oms.commands.v1", "oms.events.v1"])
async def test_a_manual_order_whose_publish_the_broker_refuses_is_cleanly_refused_and_can_be_placed_again(
    oms: Any, refused: str
) -> None:
    app = await oms.start(reconcile_interval_s=300)
    cid = client_order_id("manual", "refused-1", "AAPL")
    manual = oms_pb2.SubmitOrderRequest(
        symbol="AAPL", side=common_pb2.ORDER_SIDE_BUY, quantity=to_proto("5"), decision_id="refused-1"
    )
    async with refusing_writes(oms.kafka, oms.namespace + refused) as restore:
        before = app.book
        response = await app.SubmitOrder(manual, None)
        assert not response.accepted and response.reason_code == "NOT_WRITTEN"
        assert "nothing was sent" in response.reason
        # The book may have seen the order before the abort: it is rebuilt from the log, without it, so nothing is
        # stuck as open.
        await oms.until(lambda: app.book is not before, "the book rebuilt from the log")
        assert cid not in app.book.orders and app.book.open_quantity("AAPL") == 0
        assert of_order(await oms.committed("oms.events.v1"), cid) == []
        assert of_order(await oms.committed("oms.commands.v1"), cid) == []
        await restore()
    await oms.until(lambda: app.recovery is not None and app.recovery.done(), "consuming again", timeout_s=60)
    assert not app.trading_blocked  # reconciled after the rebuild
    again = await app.SubmitOrder(manual, None)
    assert again.accepted, again.reason
    assert of_order(await oms.committed("oms.commands.v1"), cid) == ["command"]
    assert of_order(await oms.committed("oms.events.v1"), cid) == [
        "ORDER_EVENT_TYPE_INITIALIZED",
        "ORDER_EVENT_TYPE_SUBMITTED",
    ]
    assert app.halted is None and app.book.open_quantity("AAPL") == 5


async def test_a_signal_whose_command_the_broker_refuses_is_placed_once_when_delivered_again(oms: Any) -> None:
    app = await oms.start()
    async with refusing_writes(oms.kafka, oms.namespace + "oms.commands.v1") as restore:
        signal = await oms.signal("AAPL", 0.05)
        cid = client_order_id(STRATEGY, signal.envelope.message_id, signal.symbol)
        await oms.until(lambda: app.recoveries, "the order's transaction to abort")
        # Its SUBMITTED event was written in the aborted transaction: no read_committed reader sees it.
        assert "ORDER_EVENT_TYPE_SUBMITTED" in of_order(await oms.written("oms.events.v1"), cid)
        assert of_order(await oms.committed("oms.events.v1"), cid) == []
        assert of_order(await oms.committed("oms.commands.v1"), cid) == []
        await restore()
    if app.halted is not None:
        # The signal delivered again while the broker still refused made more than 3 aborts in 60 s: the service
        # stopped (fail closed, saying why) for its supervisor to start it again, which is done here.
        assert "aborted transactions" in app.halted and oms.halts[id(app)] == [app.halted]
        await oms.stop(app)
        app = await oms.start()

    async def placed_once() -> bool:
        return of_order(await oms.committed("oms.commands.v1"), cid) == ["command"]

    await oms.until(placed_once, "the signal delivered again to be placed", timeout_s=120)
    assert of_order(await oms.committed("oms.events.v1"), cid) == [
        "ORDER_EVENT_TYPE_INITIALIZED",
        "ORDER_EVENT_TYPE_SUBMITTED",
    ]
    assert app.book.orders[cid].status == oms_pb2.ORDER_STATUS_SUBMITTED and app.halted is None
    assert app.book.open_quantity("AAPL") == 50  # counted once


async def test_a_batch_of_manual_orders_whose_transaction_aborts_is_not_written_for_every_order_in_it(oms: Any) -> None:
    """Orders written together share their transaction's fate: one refused publish aborts it, every caller hears
    NOT_WRITTEN, none of them is in the log or open in the book, and each goes through once when asked again."""
    app = await oms.start(reconcile_interval_s=300)
    symbols = ["AAPL", "MSFT", "NVDA"]
    requests = [
        oms_pb2.SubmitOrderRequest(
            symbol=s, side=common_pb2.ORDER_SIDE_BUY, quantity=to_proto("1"), decision_id=f"refused-batch-{s}"
        )
        for s in symbols
    ]
    cids = [client_order_id("manual", f"refused-batch-{s}", s) for s in symbols]
    async with refusing_writes(oms.kafka, oms.namespace + "oms.commands.v1") as restore:
        before = app.book
        answers = await asyncio.gather(*(app.SubmitOrder(request, None) for request in requests))
        assert [answer.reason_code for answer in answers] == ["NOT_WRITTEN"] * 3
        await oms.until(lambda: app.book is not before, "the book rebuilt from the log")
        assert not any(cid in app.book.orders for cid in cids)
        committed = await oms.committed("oms.events.v1")
        assert all(of_order(committed, cid) == [] for cid in cids)
        await restore()
    await oms.until(lambda: app.recovery is not None and app.recovery.done(), "consuming again", timeout_s=60)
    again = await asyncio.gather(*(app.SubmitOrder(request, None) for request in requests))
    assert all(answer.accepted for answer in again), [answer.reason for answer in again]
    commands = await oms.committed("oms.commands.v1")
    assert all(of_order(commands, cid) == ["command"] for cid in cids)
