"""order-management's Kafka transactions over the real broker: an order's events and its command commit together
with the offset of the signal that caused them; an aborted transaction makes the service rebuild its book from the
log, and the signal delivered again is placed once; a second instance with the same transactional id fences the
first, which stops writing; the shadow colour's id never fences the live one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from oms_service.app import transactional_id
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.decimals import to_proto
from trading_platform.deployment import DeploymentControl
from trading_platform.ids import client_order_id

pytestmark = pytest.mark.integration
STRATEGY = "momentum"


def cid_of(signal: Any) -> str:
    return client_order_id(STRATEGY, signal.envelope.message_id, signal.symbol)


def of_order(messages: list[Any], cid: str) -> list[str]:
    """The order's events (by type name) and commands ("command"), in log order per kind."""
    names = []
    for message in messages:
        if isinstance(message, oms_pb2.OrderEvent) and message.client_order_id == cid:
            names.append(oms_pb2.OrderEventType.Name(message.event_type))
        elif isinstance(message, oms_pb2.OrderCommand) and message.submit_order.client_order_id == cid:
            names.append("command")
    return names


def test_transactional_ids_are_one_per_role() -> None:
    assert transactional_id("ns.", False) == "ns.order-management-live"
    assert transactional_id("ns.", True) == "ns.order-management-shadow"


async def test_an_aborted_order_leaves_neither_event_nor_command_and_is_placed_once_when_redelivered(
    oms: Any,
) -> None:
    app = await oms.start()
    assert not app.trading_blocked
    first_consumer = app.consumer
    original = app.send_command
    attempts = 0
    redelivered = asyncio.Event()
    release = asyncio.Event()

    async def killed_the_first_time(order: Any, cause: Any, arrival_price: Any = None) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.sleep(0.3)  # the SUBMITTED event is sent (acked, not committed) meanwhile
            raise RuntimeError("killed between the order's event and its command")
        redelivered.set()
        await release.wait()
        await original(order, cause, arrival_price)

    app.send_command = killed_the_first_time
    try:
        await placed_once_after_an_abort(oms, app, first_consumer, redelivered, release)
    finally:
        release.set()


async def placed_once_after_an_abort(
    oms: Any, app: Any, first_consumer: Any, redelivered: asyncio.Event, release: asyncio.Event
) -> None:
    signal = await oms.signal("AAPL", 0.05)
    cid = cid_of(signal)
    await asyncio.wait_for(redelivered.wait(), 60)

    # The first attempt aborted: its INITIALIZED and SUBMITTED were written, and no read_committed reader sees them.
    assert of_order(await oms.written("oms.events.v1"), cid).count("ORDER_EVENT_TYPE_SUBMITTED") >= 1
    assert of_order(await oms.committed("oms.events.v1"), cid) == []
    assert of_order(await oms.committed("oms.commands.v1"), cid) == []
    # The service rebuilt its book from the log and consumes again; the signal came again (its offset was not
    # committed), under the same client order id.
    assert app.consumer is not first_consumer and app.halted is None
    assert oms.risk.checked == [cid, cid]

    release.set()
    await oms.until(
        lambda: cid in app.book.orders and app.book.orders[cid].status == oms_pb2.ORDER_STATUS_SUBMITTED,
        "the redelivered signal's order submitted",
    )

    async def committed_once() -> bool:
        return of_order(await oms.committed("oms.commands.v1"), cid) == ["command"]

    await oms.until(committed_once, "exactly one committed command")
    events = of_order(await oms.committed("oms.events.v1"), cid)
    assert events == ["ORDER_EVENT_TYPE_INITIALIZED", "ORDER_EVENT_TYPE_SUBMITTED"]
    assert app.trading_blocked is False  # reconciled again after the rebuild

    # A restart rebuilds the same book: the aborted attempt is nowhere in it.
    await oms.stop(app)
    again = await oms.start()
    assert again.book.orders == app.book.orders


async def test_a_second_instance_with_the_same_transactional_id_fences_the_first(oms: Any) -> None:
    first = await oms.start(reconcile_interval_s=300)  # no reconciliation report comes first: the order is next
    second = await oms.start()  # initialising the same transactional id fences the first
    assert first.transactional_id == second.transactional_id

    # The first's next transaction (a manual order) fails: it stops writing, for good.
    manual = oms_pb2.SubmitOrderRequest(
        symbol="AAPL", side=common_pb2.ORDER_SIDE_BUY, quantity=to_proto("5"), decision_id="manual-1"
    )
    response = await first.SubmitOrder(manual, None)
    assert not response.accepted and response.reason_code == "NOT_WRITTEN"
    assert first.halted is not None and "fenced" in first.halted
    assert oms.halts[id(first)] == [first.halted]  # it asked the runner to stop the service
    refused = await first.SubmitOrder(manual, None)
    assert refused.reason_code == "UNAVAILABLE"
    await oms.until(lambda: first.consuming is not None and first.consuming.done(), "the first to stop consuming")

    # The second instance takes the whole group and writes; nothing the first tried is in the log.
    signal = await oms.signal("MSFT", 0.05)

    async def placed() -> bool:
        return of_order(await oms.committed("oms.commands.v1"), cid_of(signal)) == ["command"]

    await oms.until(placed, "the second instance to place the order")
    manual_cid = client_order_id("manual", "manual-1", "AAPL")
    assert of_order(await oms.committed("oms.events.v1"), manual_cid) == []
    assert second.halted is None and not second.trading_blocked


async def test_the_shadow_colour_does_not_fence_the_live_one(oms: Any) -> None:
    live = await oms.start("live")
    shadow = await oms.start("shadow")
    assert shadow.transactional_id != live.transactional_id
    signal = await oms.signal("AAPL", 0.05)

    async def both_placed() -> bool:
        live_commands = of_order(await oms.committed("oms.commands.v1"), cid_of(signal))
        shadow_commands = of_order(await oms.committed("oms.commands.v1", shadow=True), cid_of(signal))
        return live_commands == ["command"] and shadow_commands == ["command"]

    await oms.until(both_placed, "the order placed by both colours, each on its own topics")
    assert live.halted is None and shadow.halted is None


async def test_a_colour_fenced_by_the_one_that_took_its_role_waits_to_restart_rather_than_stop(
    oms: Any, redis_url: str
) -> None:
    redis = {"url": redis_url}
    blue = await oms.start(reconcile_interval_s=300, redis=redis, deployment={"blue_green": True, "colour": "blue"})
    control = DeploymentControl.from_url(redis_url, "order-management", oms.namespace)
    try:
        await control.set_live("green", {"action": "promote"})  # promoted: green starts live, blue is to be shadow
        green = await oms.start(redis=redis, deployment={"blue_green": True, "colour": "green"})
        manual = oms_pb2.SubmitOrderRequest(
            symbol="AAPL", side=common_pb2.ORDER_SIDE_BUY, quantity=to_proto("5"), decision_id="manual-2"
        )
        assert (await blue.SubmitOrder(manual, None)).reason_code == "NOT_WRITTEN"  # fenced by green
        assert blue.halted is not None
        await asyncio.sleep(0.5)
        assert oms.halts[id(blue)] == []  # its role moved: the runner restarts it as shadow, nothing stops
        assert green.halted is None
    finally:
        await control.close()


async def test_an_aborted_manual_order_is_rebuilt_out_of_the_book_and_can_be_placed_again(oms: Any) -> None:
    app = await oms.start()
    original = app.send_command
    attempts = 0

    async def fails_once(order: Any, cause: Any, arrival_price: Any = None) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("lost the broker half-way")
        await original(order, cause, arrival_price)

    app.send_command = fails_once
    manual = oms_pb2.SubmitOrderRequest(
        symbol="AAPL", side=common_pb2.ORDER_SIDE_BUY, quantity=to_proto("5"), decision_id="manual-3"
    )
    cid = client_order_id("manual", "manual-3", "AAPL")
    response = await app.SubmitOrder(manual, None)
    assert response.reason_code == "NOT_WRITTEN" and not response.accepted
    # The book saw INITIALIZED and SUBMITTED that never reached the log: it is rebuilt without them.
    await oms.until(lambda: cid not in app.book.orders and not app.recovering, "the book rebuilt")
    await oms.until(lambda: not app.trading_blocked, "reconciled again")
    again = await app.SubmitOrder(manual, None)  # not a DUPLICATE: the first never happened
    assert again.accepted and again.order.client_order_id == cid
    assert of_order(await oms.committed("oms.commands.v1"), cid) == ["command"]
    assert app.halted is None


async def test_aborts_that_keep_coming_stop_the_service(oms: Any) -> None:
    app = await oms.start()

    async def always_fails(order: Any, cause: Any, arrival_price: Any = None) -> None:
        raise RuntimeError("the command cannot be built")

    app.send_command = always_fails
    signal = await oms.signal("AAPL", 0.05)
    await oms.until(lambda: app.halted is not None, "the service to stop writing", timeout_s=90)
    assert "aborted transactions" in (app.halted or "")
    assert oms.halts[id(app)] == [app.halted]
    assert of_order(await oms.committed("oms.events.v1"), cid_of(signal)) == []
    assert of_order(await oms.committed("oms.commands.v1"), cid_of(signal)) == []
