"""Manual orders waiting together are written in one Kafka transaction (one commit for many orders, not one each:
before, the order storm went through at 2-4 orders a second and most of it was answered BUSY). Each caller still
hears its own answer, one symbol's orders keep their order, and every order is in the log once, with its command."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.decimals import to_proto
from trading_platform.ids import client_order_id

pytestmark = pytest.mark.integration
SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "META", "GOOG", "TSLA", "JPM"]


def manual(decision_id: str, symbol: str, side: int = common_pb2.ORDER_SIDE_BUY) -> oms_pb2.SubmitOrderRequest:
    return oms_pb2.SubmitOrderRequest(symbol=symbol, side=side, quantity=to_proto("2"), decision_id=decision_id)


def transactions() -> tuple[float, float]:
    """(committed order transactions, orders in them) so far, from order-management's metric."""
    name = "oms_orders_per_transaction"
    return REGISTRY.get_sample_value(f"{name}_count") or 0.0, REGISTRY.get_sample_value(f"{name}_sum") or 0.0


async def test_orders_waiting_together_are_written_in_one_transaction_and_each_caller_hears_its_own(oms: Any) -> None:
    app = await oms.start(reconcile_interval_s=300, oms={"risk_timeout_s": 5.0, "max_orders_per_transaction": 32})
    oms.risk.delay_s = 0.2  # risk deliberates: the orders are with it side by side, not one after the other
    requests = [manual(f"batch-{symbol}", symbol) for symbol in SYMBOLS]
    requests += [manual("batch-AAPL-second", "AAPL", common_pb2.ORDER_SIDE_SELL)]  # after AAPL's first, in turn
    before = transactions()
    answers = await asyncio.gather(*(app.SubmitOrder(request, None) for request in requests))
    count, orders = (now - then for now, then in zip(transactions(), before, strict=True))
    assert [answer.reason_code for answer in answers] == ["APPROVED"] * len(requests)
    cids = [client_order_id("manual", request.decision_id, request.symbol) for request in requests]
    assert [answer.order.client_order_id for answer in answers] == cids  # each caller its own order
    assert (count, orders) == (1, len(requests))  # one commit for the nine
    checked = oms.risk.checked
    assert checked.index(cids[0]) < checked.index(cids[-1])  # AAPL's orders went to risk in the order they came
    commands = [c.submit_order.client_order_id for c in await oms.committed("oms.commands.v1")]
    assert sorted(commands) == sorted(cids)  # each once
    submitted = [
        e.client_order_id
        for e in await oms.committed("oms.events.v1")
        if e.event_type == oms_pb2.ORDER_EVENT_TYPE_SUBMITTED
    ]
    assert sorted(submitted) == sorted(cids)


async def test_a_batch_takes_at_most_the_configured_orders_and_the_rest_follow_in_the_next(oms: Any) -> None:
    app = await oms.start(reconcile_interval_s=300, oms={"risk_timeout_s": 5.0, "max_orders_per_transaction": 3})
    before = transactions()
    answers = await asyncio.gather(*(app.SubmitOrder(manual(f"capped-{s}", s), None) for s in SYMBOLS[:7]))
    count, orders = (now - then for now, then in zip(transactions(), before, strict=True))
    assert all(answer.accepted for answer in answers)
    assert (count, orders) == (3, 7)  # 3 + 3 + 1
    assert not app.order_writes and not app.orders_waiting
