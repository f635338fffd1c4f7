"""The broker side: the paper exchange's matching engine behind alpaca-py's TradingClient and TradingStream surface.

`SimTradingClient` answers the calls execution makes (submit, look up by client order id, list orders, cancel,
account, positions) from the in-memory `paper_exchange.engine.Exchange`, and injects what a real broker does wrong:
a 5xx or a 429 before the order lands, a timeout (landed or not), a lost response (the order landed, the answer did
not come back). `SimTradingStream` is the trade_updates websocket: updates queue on it while it is connected and are
handed over when the simulation says (in order, reordered or twice); a dropped stream loses what it held.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import requests
from alpaca.common.exceptions import APIError
from paper_exchange.engine import ApiError, Exchange

from trading_simulation.bus import ComponentDown
from trading_simulation.loop import INCARNATION

if TYPE_CHECKING:
    from trading_simulation.world import World


def api_error(status: int, message: str) -> APIError:
    response = SimpleNamespace(status_code=status)
    return APIError(json.dumps({"code": status * 100000, "message": message}), SimpleNamespace(response=response))


@dataclass
class Post:
    """One submit that reached the broker."""

    client_order_id: str
    incarnation: str
    landed: bool  # this post created the order (False: refused, e.g. 422 for a used id)
    symbol: str
    side: str
    qty: Decimal


@dataclass
class BrokerRecord:
    posts: list[Post] = field(default_factory=list)


class _Order:
    """What alpaca-py's Order model gives execution: attributes, and model_dump(mode="json") for catch-up."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.id = data["id"]
        self.client_order_id = data["client_order_id"]
        self.status = data["status"]
        self.created_at = data["created_at"]
        self.symbol = data["symbol"]
        self.side = data["side"]
        self.qty = data["qty"]
        self.filled_qty = data["filled_qty"]
        self.filled_avg_price = data["filled_avg_price"]

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return dict(self._data)


class SimTradingClient:
    """alpaca-py TradingClient over the in-memory exchange, with the broker's faults."""

    def __init__(self, *_: Any, **__: Any) -> None:
        from trading_simulation.bus import world

        self.world: World = world()
        self.incarnation = INCARNATION.get() or "?"
        self._retry = 0

    @property
    def exchange(self) -> Exchange:
        return self.world.exchange

    def _alive(self) -> None:
        if not self.world.alive(self.incarnation):
            raise ComponentDown(f"{self.incarnation} has crashed")

    def submit_order(self, request: Any) -> _Order:
        self._alive()
        cid = request.client_order_id
        fault = self.world.broker_fault("submit")
        if fault == "broker_5xx":
            raise api_error(503, "service unavailable (injected)")
        if fault == "broker_429":
            raise api_error(429, "too many requests (injected)")
        if fault == "timeout_before":
            raise requests.exceptions.ReadTimeout("read timed out (injected; the order did not land)")
        payload = {
            "symbol": request.symbol,
            "qty": str(request.qty),
            "side": str(getattr(request.side, "value", request.side)),
            "type": str(getattr(request.type, "value", request.type) or "market"),
            "time_in_force": str(getattr(request.time_in_force, "value", request.time_in_force)),
            "client_order_id": cid,
        }
        if getattr(request, "limit_price", None) is not None:
            payload["limit_price"] = str(request.limit_price)
        try:
            order = self.exchange.submit(payload)
        except ApiError as error:
            self.world.broker.posts.append(
                Post(cid, self.incarnation, False, request.symbol, payload["side"], Decimal(payload["qty"]))
            )
            raise api_error(error.status, error.message) from None
        self.world.broker.posts.append(
            Post(cid, self.incarnation, True, request.symbol, payload["side"], Decimal(payload["qty"]))
        )
        self.world.note(f"broker: {cid} landed ({payload['side']} {payload['qty']} {request.symbol})")
        if fault == "timeout_after":
            raise requests.exceptions.ReadTimeout("read timed out (injected; the order landed)")
        if fault == "lost_response":
            raise requests.exceptions.ConnectionError("connection reset (injected; the order landed)")
        return _Order(order.to_json())

    def get_order_by_client_id(self, client_order_id: str) -> _Order:
        self._alive()
        fault = self.world.broker_fault("lookup")
        if fault == "broker_5xx":
            raise api_error(503, "service unavailable (injected)")
        if fault in ("timeout_before", "timeout_after", "lost_response"):
            raise requests.exceptions.ReadTimeout("read timed out (injected)")
        order = self.exchange.by_client_id.get(client_order_id)
        if order is None:
            raise api_error(404, "order not found")
        return _Order(order.to_json())

    def get_orders(self, request: Any = None) -> list[_Order]:
        self._alive()
        if self.world.broker_fault("lookup") is not None:
            raise requests.exceptions.ReadTimeout("read timed out (injected)")
        return [_Order(o.to_json()) for o in self.exchange.list_orders(status="all", limit=500)]

    def cancel_orders(self) -> list[Any]:
        self._alive()
        return self.exchange.cancel_all()

    def cancel_order_by_id(self, order_id: str) -> None:
        self._alive()
        try:
            self.exchange.cancel(str(order_id))
        except ApiError as error:
            raise api_error(error.status, error.message) from None

    def get_account(self) -> Any:
        self._alive()
        account = self.exchange.account_json()
        return SimpleNamespace(**account)

    def get_all_positions(self) -> list[Any]:
        self._alive()
        return [SimpleNamespace(**self.exchange.position_json(s)) for s in self.exchange.open_positions()]


class SimTradingStream:
    """The trade_updates websocket (alpaca-py TradingStream's surface that execution uses)."""

    def __init__(self, *_: Any, **__: Any) -> None:
        from trading_simulation.bus import world

        self.world: World = world()
        self.incarnation = INCARNATION.get() or "?"
        self.handler: Any = None
        self._running = False
        self._ws: object | None = None
        self.confirmed = False
        self.connected_at = 0.0
        self.queue: list[dict[str, Any]] = []
        self._dropped = asyncio.Event()
        self.world.streams.append(self)

    def subscribe_trade_updates(self, handler: Any) -> None:
        self.handler = handler

    @property
    def connected(self) -> bool:
        return self._ws is not None and self.confirmed

    async def _run_forever(self) -> None:
        self._running = True
        loop = asyncio.get_running_loop()
        while True:
            if self._ws is None:
                # alpaca-py's first reconnect waits its 1 s minimum backoff with equal jitter: 0.5 to 1 s.
                await asyncio.sleep(self.world.rng.uniform(0.5, 1.0))
                if not self.world.alive(self.incarnation):
                    return
                self._ws = object()
                self.confirmed = True
                self.connected_at = loop.time()
                self._dropped.clear()
                self.world.note(f"{self.incarnation}: trade-update stream connected")
            await self._dropped.wait()

    def drop(self) -> None:
        """The connection breaks: what was on its way is lost; the stream's loop reconnects."""
        self._ws = None
        self.confirmed = False
        lost = len(self.queue)
        self.queue.clear()
        self._dropped.set()
        self.world.note(f"{self.incarnation}: trade-update stream dropped ({lost} updates lost)")

    def offer(self, update: dict[str, Any]) -> None:
        if self.connected and self.world.alive(self.incarnation):
            self.queue.append(update)

    async def stop_ws(self) -> None:
        self._ws = None
        self._running = False

    async def close(self) -> None:
        return None
