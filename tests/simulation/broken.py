"""Deliberately broken components: each breaks one invariant, so a run with it must fail with that invariant's name.
They prove the checker is not vacuous (tests/simulation/test_checker.py)."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from execution_service.app import ExecutionApp
from execution_service.engine import ExecutionEngine
from oms_service.engine import OrderBook
from trading.oms.v1 import oms_pb2
from trading_platform.decimals import from_proto, to_proto


class ExecutionIgnoringTheApprovedQuantity(ExecutionApp):
    """Sends one share more than the command (and the approval) says."""

    def _request(self, order: oms_pb2.SubmitOrder) -> Any:
        bigger = oms_pb2.SubmitOrder()
        bigger.CopyFrom(order)
        bigger.quantity.CopyFrom(to_proto((from_proto(order.quantity) or Decimal(0)) + 1))
        return super()._request(bigger)


class ExecutionPostingTwice(ExecutionApp):
    """After every submit, posts the same order again (a blind repost)."""

    async def submit(self, order: oms_pb2.SubmitOrder, command: oms_pb2.OrderCommand) -> None:
        await super().submit(order, command)
        with contextlib.suppress(Exception):
            self.client.submit_order(self._request(order))


class BookCountingFillsTwice(OrderBook):
    """Applies every fill event's quantity to the position twice."""

    def apply(self, event: oms_pb2.OrderEvent) -> None:
        super().apply(event)
        if event.fill_id and event.event_type in (
            oms_pb2.ORDER_EVENT_TYPE_PARTIALLY_FILLED,
            oms_pb2.ORDER_EVENT_TYPE_FILLED,
        ):
            position = self.positions[event.order.symbol]
            position.fill(event.order.side, from_proto(event.last_quantity) or Decimal(0), position.market_price)


class _ForgetfulEngine(ExecutionEngine):
    def report_for(self, update: dict[str, Any], now_ns: int) -> Any:
        if str(update.get("event")) in ("fill", "partial_fill"):
            return None  # the fill is never reported
        return super().report_for(update, now_ns)


class ExecutionLosingFills(ExecutionApp):
    """Never reports a fill (and catch-up cannot tell, since its engine is the same forgetful one)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.engine = _ForgetfulEngine()

    async def catch_up(self) -> None:
        return None
