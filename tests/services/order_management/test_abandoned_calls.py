"""A SubmitOrder whose caller gives up (a gRPC deadline cancels the handler) leaves no order open of record that the
log and the broker never had: once its writing has begun the order ends (here: submitted, with its command), and one
whose turn had not come is dropped unwritten. Before the fix, the cancelled handler aborted its transaction after
INITIALIZED had changed the book: the order stayed open of record for good (the order storm's 5 open orders, and
finding 5 of docs/reliability.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from oms_service.engine import OrderBook
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.decimals import to_proto
from trading_platform.ids import client_order_id

pytestmark = pytest.mark.integration


def manual(decision_id: str, symbol: str = "AAPL") -> oms_pb2.SubmitOrderRequest:
    return oms_pb2.SubmitOrderRequest(
        symbol=symbol, side=common_pb2.ORDER_SIDE_BUY, quantity=to_proto("3"), decision_id=decision_id
    )


async def folded_log(oms: Any) -> OrderBook:
    book = OrderBook()
    book.apply_all(await oms.committed("oms.events.v1"))
    return book


async def test_an_order_whose_caller_gave_up_while_risk_decided_is_still_submitted(oms: Any) -> None:
    app = await oms.start(oms={"risk_timeout_s": 5.0})
    oms.risk.delay_s = 1.0
    cid = client_order_id("manual", "gave-up-midway", "AAPL")
    call = asyncio.create_task(app.SubmitOrder(manual("gave-up-midway"), None))
    await oms.until(lambda: cid in oms.risk.checked and cid in app.book.orders, "INITIALIZED, and risk deciding")
    assert app.book.orders[cid].status == oms_pb2.ORDER_STATUS_INITIALIZED
    call.cancel()  # what grpc.aio does to the handler when the caller's deadline passes
    with pytest.raises(asyncio.CancelledError):
        await call
    await oms.until(lambda: app.book.orders[cid].status == oms_pb2.ORDER_STATUS_SUBMITTED, "the order to be submitted")

    async def command_committed() -> bool:
        return any(c.submit_order.client_order_id == cid for c in await oms.committed("oms.commands.v1"))

    await oms.until(command_committed, "its command in the log")
    log = await folded_log(oms)
    assert log.orders[cid].status == oms_pb2.ORDER_STATUS_SUBMITTED
    assert app.book.orders[cid] == log.orders[cid]  # the book of record is the log's
    assert not app.recovering and app.halted is None


async def test_an_order_whose_caller_gave_up_before_its_turn_is_not_written(oms: Any) -> None:
    app = await oms.start(oms={"risk_timeout_s": 5.0})
    oms.risk.delay_s = 1.0
    first = asyncio.create_task(app.SubmitOrder(manual("holds-the-turn"), None))
    await oms.until(lambda: oms.risk.checked, "the first order to hold the transaction")
    queued = asyncio.create_task(app.SubmitOrder(manual("gives-up-queued", "MSFT"), None))
    await asyncio.sleep(0.2)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert (await first).accepted
    await oms.until(lambda: not app.order_writes, "the queued order's turn to come and go")
    dropped = client_order_id("manual", "gives-up-queued", "MSFT")
    assert dropped not in app.book.orders
    assert dropped not in (await folded_log(oms)).orders
    assert dropped not in oms.risk.checked


async def test_an_order_beyond_the_queue_bound_is_answered_busy_at_once_and_not_written(oms: Any) -> None:
    """A storm is not queued past its callers' deadlines (nor held in memory): beyond OMS__MAX_QUEUED_ORDERS the
    answer is BUSY, nothing written; the queued orders are placed."""
    app = await oms.start(oms={"risk_timeout_s": 5.0, "max_queued_orders": 2})
    oms.risk.delay_s = 0.5
    queued = [asyncio.create_task(app.SubmitOrder(manual(f"queued-{i}"), None)) for i in range(2)]
    await oms.until(lambda: len(app.order_writes) == 2, "two orders queued")
    busy = await app.SubmitOrder(manual("one-too-many"), None)
    assert (busy.accepted, busy.reason_code) == (False, "BUSY") and "OMS__MAX_QUEUED_ORDERS=2" in busy.reason
    assert all(answer.accepted for answer in await asyncio.gather(*queued))
    assert client_order_id("manual", "one-too-many", "AAPL") not in app.book.orders
    assert client_order_id("manual", "one-too-many", "AAPL") not in (await folded_log(oms)).orders
