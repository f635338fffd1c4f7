"""HTTP and websocket surface of the paper exchange, as the real alpaca-py clients expect it (url_override):

- Trading API v2 (TradingClient, url_override=http://host:port): /v2/account, /v2/clock, /v2/calendar, /v2/assets,
  /v2/orders (+ by id, by client order id, replace, cancel, cancel all), /v2/positions (+ close).
- trade_updates stream (TradingStream, url_override=ws://host:port/stream): JSON authenticate / listen.
- Market Data API v2 (StockHistoricalDataClient, url_override=http://host:port): /v2/stocks/bars (1Day real, 1Min and
  1Hour generated, Alpaca's adjustment, sort, feed, limit and page_token: `paper_exchange.bars`), /quotes, /trades,
  latest quote / bar / trade, paginated with next_page_token.
- Stocks stream (StockDataStream, url_override=ws://host:port/v2/iex): msgpack auth / subscribe / unsubscribe, one
  connection per key.
- /admin/*: the replay clock (advance, status) and fault injection; /healthz.
- /admin/*, /docs, /redoc and /openapi.json answer only a request carrying the admin key in the X-Admin-Key
  header (ServerConfig.admin_key; none configured = refused); /healthz answers anyone.

Errors are Alpaca's: JSON {"code", "message"} with its HTTP statuses, 429 with X-RateLimit-* headers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hmac
import json
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import msgpack
import numpy as np
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response

from paper_exchange.bars import MAX_LIMIT, BarHistory, minute_n, minute_vwap, parse_request
from paper_exchange.engine import ApiError, Exchange, Order, asset_id, iso
from paper_exchange.intraday import MINUTES_PER_SESSION, half_spread


@dataclass
class Faults:
    """What goes wrong, and how often. Seeded: the same seed and call sequence give the same faults."""

    seed: int = 0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_5xx_rate: float = 0.0
    # The next N requests get 429, whatever the rate limit says.
    rate_limit_burst: int = 0
    # Fraction of order submissions that are accepted but whose response is lost (504 after the order exists).
    lost_response_rate: float = 0.0
    # Drop every stream connection now (one shot), or answer nothing after auth (half-open).
    drop_streams: bool = False
    half_open_streams: bool = False
    # Refuse new stream connections (with drop_streams: the stream stays down until this is lifted).
    refuse_streams: bool = False
    duplicate_trade_updates_rate: float = 0.0
    reorder_trade_updates_rate: float = 0.0
    # Trade updates of fills are held back this many seconds.
    fill_delay_s: float = 0.0
    # Stop answering for this many seconds from now (one shot): every trading and market-data request is held, then
    # answered 503 without being handled; new stream connections wait; nothing goes out on the streams (what the
    # engine produces meanwhile is sent once the exchange answers again). /admin and /healthz keep answering.
    unresponsive_s: float = 0.0


@dataclass
class ServerConfig:
    api_key_id: str
    api_secret_key: str
    rate_limit_per_minute: int = 200
    speed: float = 0.0  # simulated minutes per wall second; 0 = manual (advance through /admin/advance)
    faults: Faults = field(default_factory=Faults)
    # More key pairs for the same account (e.g. one per blue-green colour, so the record shows who submitted).
    extra_keys: dict[str, str] = field(default_factory=dict)
    # The key /admin/*, /docs and /openapi.json require (X-Admin-Key); empty = those routes are refused.
    admin_key: str = ""
    # The most bars one page of /v2/stocks/bars holds, whatever the limit (Alpaca's maximum limit by default).
    max_page_size: int = MAX_LIMIT


CHANNELS = {"t": "trades", "q": "quotes", "b": "bars"}  # stocks stream message type -> channel


class RateLimiter:
    """Alpaca's per-account request budget: a sliding one-minute window."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.calls: deque[float] = deque()

    def check(self) -> tuple[bool, int, int]:
        now = time.monotonic()
        while self.calls and now - self.calls[0] > 60:
            self.calls.popleft()
        reset = int(time.time() + (60 - (now - self.calls[0]) if self.calls else 60))
        if len(self.calls) >= self.per_minute:
            return False, 0, reset
        self.calls.append(now)
        return True, self.per_minute - len(self.calls), reset


ADMIN_HEADER = "X-Admin-Key"
ADMIN_PATHS = ("/admin", "/docs", "/redoc", "/openapi.json")


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def create_app(exchange: Exchange, config: ServerConfig) -> FastAPI:
    state = _State(exchange, config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        task = asyncio.create_task(state.replay()) if config.speed > 0 else None
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(title="paper exchange", description=__doc__, version="1.0", lifespan=lifespan)
    app.state.paper = state

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path.startswith(ADMIN_PATHS):
            refused = state.admin_refusal(request.headers.get(ADMIN_HEADER, ""))
            return refused or await call_next(request)
        if path.startswith("/healthz"):
            return await call_next(request)
        if state.silent():
            await state.until_answering()
            return error(503, 50310000, "the exchange did not answer (injected: unresponsive)")
        key = request.headers.get("APCA-API-KEY-ID", "")
        secret = request.headers.get("APCA-API-SECRET-KEY", "")
        if not state.authorized(key, secret):
            return error(401 if not key else 403, 40110000, "request is not authorized")
        faults = state.faults
        if faults.latency_ms or faults.latency_jitter_ms:
            await asyncio.sleep(
                max(0.0, faults.latency_ms + state.rng.uniform(-1, 1) * faults.latency_jitter_ms) / 1000
            )
        allowed, remaining, reset = state.limiter.check()
        limit_headers = {
            "X-RateLimit-Limit": str(config.rate_limit_per_minute),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }
        if faults.rate_limit_burst > 0:
            faults.rate_limit_burst -= 1
            allowed = False
            limit_headers["X-RateLimit-Remaining"] = "0"
        if not allowed:
            return error(429, 42910000, "rate limit exceeded", limit_headers)
        if faults.error_5xx_rate and state.rng.random() < faults.error_5xx_rate:
            return error(500, 50010000, "internal server error (injected)")
        response: Response = await call_next(request)
        await state.flush()  # trade updates the request caused go out after its response is ready
        for name, value in limit_headers.items():
            response.headers[name] = value
        return response

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "ok": True,
            "day": str(exchange.days[exchange.day_index]),
            "minute": exchange.minute,
            # What is replayed: the real days of the source between these (tradectl up prints it).
            "replay": {
                "source": exchange.config.source,
                "symbols": list(exchange.config.symbols),
                "first_day": str(exchange.days[0]),
                "last_day": str(exchange.days[-1]),
            },
        }

    # -- trading API -------------------------------------------------------------------------------------------
    @app.get("/v2/account")
    async def account() -> dict[str, Any]:
        return exchange.account_json()

    @app.get("/v2/clock")
    async def clock() -> dict[str, Any]:
        return state.clock_json()

    @app.get("/v2/calendar")
    async def calendar(start: str | None = None, end: str | None = None) -> list[dict[str, Any]]:
        days = [
            str(d) for d in exchange.days if (not start or str(d) >= start[:10]) and (not end or str(d) <= end[:10])
        ]
        return [
            {
                "date": d,
                "open": "09:30",
                "close": "16:00",
                "session_open": "0400",
                "session_close": "2000",
                "settlement_date": d,
            }
            for d in days
        ]

    @app.get("/v2/assets")
    async def assets() -> list[dict[str, Any]]:
        return [state.asset_json(s) for s in exchange.config.symbols]

    @app.get("/v2/assets/{symbol}")
    async def asset(symbol: str) -> dict[str, Any]:
        if symbol.upper() not in exchange.config.symbols:
            raise ApiError(404, 40410000, "asset not found")
        return state.asset_json(symbol.upper())

    @app.post("/v2/orders")
    async def submit(request: Request) -> Any:
        received_ns = time.time_ns()  # wall clock, for latency measurements of the platform in front of it
        payload = await request.json()
        order = exchange.submit(payload)
        state.submissions.append(
            {
                "client_order_id": order.client_order_id,
                "order_id": order.id,
                "received_ns": received_ns,
                "key_id": request.headers.get("APCA-API-KEY-ID", ""),
                "symbol": order.symbol,
                "side": order.side,
                "qty": None if order.qty is None else format(order.qty, "f"),
            }
        )
        if state.faults.lost_response_rate and state.rng.random() < state.faults.lost_response_rate:
            state.lost_responses.append(order.client_order_id)
            return error(504, 50410000, "gateway timeout (injected: the order was accepted, the response lost)")
        return order.to_json()

    @app.get("/v2/orders")
    async def list_orders(
        status: str = "open", limit: int = 50, direction: str = "desc", nested: bool = False, symbols: str | None = None
    ) -> list[dict[str, Any]]:
        wanted = set(symbols.split(",")) if symbols else None
        return [o.to_json(nested) for o in exchange.list_orders(status, min(limit, 500), wanted, direction, nested)]

    @app.get("/v2/orders:by_client_order_id")
    async def by_client_order_id(client_order_id: str) -> dict[str, Any]:
        return exchange.get_by_client_id(client_order_id).to_json()

    @app.get("/v2/orders/{order_id}")
    async def get_order(order_id: str, nested: bool = True) -> dict[str, Any]:
        return exchange.get(order_id).to_json(nested)

    @app.patch("/v2/orders/{order_id}")
    async def replace(order_id: str, request: Request) -> dict[str, Any]:
        return exchange.replace(order_id, await request.json()).to_json()

    @app.delete("/v2/orders/{order_id}")
    async def cancel(order_id: str) -> Response:
        exchange.cancel(order_id)
        return Response(status_code=204)

    @app.delete("/v2/orders")
    async def cancel_all() -> Any:
        return JSONResponse(
            [{"id": o.id, "status": status, "body": o.to_json()} for o, status in exchange.cancel_all()],
            status_code=207,
        )

    @app.get("/v2/positions")
    async def positions() -> list[dict[str, Any]]:
        return [exchange.position_json(s) for s in exchange.open_positions()]

    @app.get("/v2/positions/{symbol}")
    async def position(symbol: str) -> dict[str, Any]:
        return exchange.position_json(symbol.upper())

    @app.delete("/v2/positions/{symbol}")
    async def close_position(symbol: str, qty: str | None = None, percentage: str | None = None) -> dict[str, Any]:
        from paper_exchange.engine import D

        order = exchange.close_position(symbol.upper(), D(qty) if qty else None, D(percentage) if percentage else None)
        return order.to_json()

    @app.delete("/v2/positions")
    async def close_all(cancel_orders: bool = False) -> Any:
        if cancel_orders:
            exchange.cancel_all()
        results = []
        for symbol in exchange.open_positions():
            order = exchange.close_position(symbol)
            results.append({"symbol": symbol, "status": 200, "body": order.to_json()})
        return JSONResponse(results, status_code=207)

    # -- market data API ---------------------------------------------------------------------------------------
    @app.get("/v2/stocks/bars")
    async def bars(request: Request) -> JSONResponse:
        """Alpaca's historical bars (paper_exchange.bars); every parameter is checked there, errors 422. The header
        X-Data-Origin labels them: `real` (1Day: the source's OHLCV) or `generated` (minutes and hours)."""
        params = dict(request.query_params)
        params.setdefault("start", iso(state.default_start_ns()) or "")
        parsed = parse_request(params, exchange.config.symbols)
        origin = "real" if parsed.timeframe.daily else "generated"
        return JSONResponse(state.history.page(parsed, config.max_page_size), headers={"X-Data-Origin": origin})

    @app.get("/v2/stocks/quotes")
    async def quotes(
        symbols: str, start: str | None = None, end: str | None = None, limit: int = 1000, page_token: str | None = None
    ) -> dict[str, Any]:
        return state.paginate("quotes", symbols, start, end, limit, page_token)

    @app.get("/v2/stocks/trades")
    async def trades(
        symbols: str, start: str | None = None, end: str | None = None, limit: int = 1000, page_token: str | None = None
    ) -> dict[str, Any]:
        return state.paginate("trades", symbols, start, end, limit, page_token)

    @app.get("/v2/stocks/quotes/latest")
    async def latest_quotes(symbols: str) -> dict[str, Any]:
        return {"quotes": {s: state.quote_json(s, exchange.minute) for s in state.symbols(symbols)}}

    @app.get("/v2/stocks/bars/latest")
    async def latest_bars(symbols: str) -> dict[str, Any]:
        return {"bars": {s: state.bar_json(exchange.bar(s)) for s in state.symbols(symbols)}}

    @app.get("/v2/stocks/trades/latest")
    async def latest_trades(symbols: str) -> dict[str, Any]:
        return {"trades": {s: state.trade_json(exchange.bar(s)) for s in state.symbols(symbols)}}

    # -- admin -------------------------------------------------------------------------------------------------
    @app.post("/admin/advance")
    async def advance(minutes: int = 1) -> dict[str, Any]:
        moved = 0
        for _ in range(minutes):  # one minute at a time, so each bar and its fills go out in order
            step = exchange.advance(1)
            await state.flush()
            moved += step
            if not step:
                break
        return {
            "moved": moved,
            "day": str(exchange.days[exchange.day_index]),
            "minute": exchange.minute,
            "finished": exchange.finished,
        }

    @app.post("/admin/tape")
    async def tape(ticks: int = 1000) -> dict[str, Any]:
        """Replay the next ticks of the real ES futures tape (not generated) on the stocks stream as symbol ES."""
        sent = await state.replay_tape(ticks)
        return {"sent": sent, "position": state.tape_position}

    @app.get("/admin/faults")
    async def get_faults() -> dict[str, Any]:
        return {**asdict(state.faults), "unresponsive_for_s": state.silent_for_s()}

    @app.put("/admin/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        values = await request.json()
        unknown = set(values) - set(asdict(Faults()))
        if unknown:
            raise ApiError(
                422, 40010001, f"unknown fault settings {sorted(unknown)}; known: {sorted(asdict(Faults()))}"
            )
        state.faults = Faults(**{**asdict(state.faults), **values})
        state.rng = random.Random(state.faults.seed)
        if state.faults.unresponsive_s:
            state.silent_until = time.monotonic() + state.faults.unresponsive_s
            state.faults.unresponsive_s = 0.0
        if state.faults.drop_streams:
            await state.drop_streams()
            state.faults.drop_streams = False
        return {**asdict(state.faults), "unresponsive_for_s": state.silent_for_s()}

    @app.get("/admin/streamed")
    async def streamed() -> dict[str, Any]:
        """Market-data messages sent on the stocks stream so far, per channel (trades, quotes, bars) and symbol."""
        return {"streamed": state.streamed}

    @app.get("/admin/submissions")
    async def submissions() -> dict[str, Any]:
        """Every accepted order submission, in order: how tests prove no client order id was posted twice."""
        return {
            "submissions": state.submissions,
            "trade_stream_logins": state.trade_stream_logins,
            "lost_responses": state.lost_responses,
            "fills": [
                {**asdict(f), "qty": str(f.qty), "price": str(f.price), "base_price": str(f.base_price)}
                for f in exchange.fills
            ],
        }

    # -- streams -----------------------------------------------------------------------------------------------
    @app.websocket("/stream")
    async def trade_stream(websocket: WebSocket) -> None:
        await state.serve_trade_stream(websocket)

    @app.websocket("/v2/{feed}")
    async def data_stream(websocket: WebSocket, feed: str) -> None:
        await state.serve_data_stream(websocket, feed)

    return app


class _State:
    def __init__(self, exchange: Exchange, config: ServerConfig) -> None:
        self.exchange = exchange
        self.config = config
        self.faults = config.faults
        self.rng = random.Random(config.faults.seed)
        self.limiter = RateLimiter(config.rate_limit_per_minute)
        self.submissions: list[dict[str, Any]] = []
        self.trade_stream_logins: list[dict[str, Any]] = []
        self.lost_responses: list[str] = []
        self.trade_clients: set[WebSocket] = set()
        self.data_clients: dict[WebSocket, dict[str, set[str]]] = {}
        self.data_keys: set[str] = set()
        self.outbox: list[tuple[str, dict[str, Any]]] = []  # (kind, payload) produced by the engine, sent by flush()
        self.tape_position = 0  # next tick of the real ES tape (symbol "ES" on the stocks stream)
        self.silent_until = 0.0  # monotonic time until which the exchange answers nothing (fault unresponsive_s)
        # Market data sent on the stocks stream, per channel and symbol (GET /admin/streamed): what a consumer of
        # the stream must account for.
        self.streamed: dict[str, dict[str, int]] = {"trades": {}, "quotes": {}, "bars": {}}
        self.history = BarHistory(exchange)  # GET /v2/stocks/bars
        exchange.listeners.append(lambda event: self.outbox.append(("trade", event)))
        exchange.market_listeners.append(lambda symbol, bar: self.outbox.append(("bar", bar)))

    async def replay(self) -> None:
        """Advance one simulated minute every 1/speed wall seconds until the data ends."""
        interval = 1.0 / self.config.speed
        next_step = time.monotonic()
        while not self.exchange.finished:
            self.exchange.advance(1)
            await self.flush()
            if any("ES" in s["trades"] for s in self.data_clients.values()):
                await self.replay_tape_minute()
            next_step += interval
            await asyncio.sleep(max(0.0, next_step - time.monotonic()))

    async def replay_tape(self, ticks: int) -> int:
        """Send the next `ticks` real ES futures trades to the stream's subscribers of "ES" trades."""
        from trading_datasets import es_ticks

        tape = es_ticks()
        end = min(self.tape_position + ticks, len(tape))
        messages = [
            {
                "T": "t",
                "S": "ES",
                "t": msgpack.Timestamp.from_unix_nano(int(tape.ts_ns[i])),
                "p": float(tape.price[i]),
                "s": float(tape.size[i]),
                "i": i,
                "x": "CME",
                "c": ["@"],
                "z": "C",
            }
            for i in range(self.tape_position, end)
        ]
        self.tape_position = end
        for websocket, subscriptions in list(self.data_clients.items()):
            if "ES" in subscriptions["trades"] and messages:
                try:
                    await websocket.send_bytes(msgpack.packb(messages))
                except Exception:
                    self.data_clients.pop(websocket, None)
        return len(messages)

    async def replay_tape_minute(self) -> None:
        """With the clock running, the tape moves one minute of its own (real) time per simulated minute."""
        from trading_datasets import es_ticks

        tape = es_ticks()
        start = int(tape.ts_ns[min(self.tape_position, len(tape) - 1)])
        end_index = int(np.searchsorted(tape.ts_ns, start + 60_000_000_000, side="left"))
        await self.replay_tape(max(end_index - self.tape_position, 0))

    def silent(self) -> bool:
        return time.monotonic() < self.silent_until

    def silent_for_s(self) -> float:
        return round(max(0.0, self.silent_until - time.monotonic()), 3)

    async def until_answering(self) -> None:
        while self.silent():
            await asyncio.sleep(self.silent_until - time.monotonic())

    # The engine is synchronous; its events are queued and sent after each request or replay step.
    async def flush(self) -> None:
        if self.silent():  # unresponsive: kept, and sent by the first flush once the exchange answers again
            return
        pending, self.outbox = self.outbox, []
        trade_events = [p for kind, p in pending if kind == "trade"]
        if (
            self.faults.reorder_trade_updates_rate
            and len(trade_events) > 1
            and self.rng.random() < self.faults.reorder_trade_updates_rate
        ):
            i = self.rng.randrange(len(trade_events) - 1)
            trade_events[i], trade_events[i + 1] = trade_events[i + 1], trade_events[i]
        for event in trade_events:
            copies = 2 if self.rng.random() < self.faults.duplicate_trade_updates_rate else 1
            if self.faults.fill_delay_s and event["data"]["event"] in ("fill", "partial_fill"):
                asyncio.get_running_loop().call_later(
                    self.faults.fill_delay_s, lambda e=event: asyncio.ensure_future(self._send_trade(e))
                )
                continue
            for _ in range(copies):
                await self._send_trade(event)
        market = [p for kind, p in pending if kind == "bar"]
        if market and self.data_clients:
            await self._send_market(market)

    async def _send_trade(self, event: dict[str, Any]) -> None:
        text = json.dumps(event)
        for websocket in list(self.trade_clients):
            try:
                await websocket.send_bytes(text.encode())
            except Exception:
                self.trade_clients.discard(websocket)

    async def _send_market(self, bars: list[dict[str, Any]]) -> None:
        for websocket, subscriptions in list(self.data_clients.items()):
            messages: list[dict[str, Any]] = []
            for bar in bars:
                symbol = bar["symbol"]
                if symbol in subscriptions["trades"] or "*" in subscriptions["trades"]:
                    messages.append({"T": "t", **self.trade_json(bar), "S": symbol})
                if symbol in subscriptions["quotes"] or "*" in subscriptions["quotes"]:
                    messages.append({"T": "q", **self.quote_json(symbol, bar["minute"], bar), "S": symbol})
                if symbol in subscriptions["bars"] or "*" in subscriptions["bars"]:
                    messages.append({"T": "b", **self.bar_json(bar), "S": symbol})
            for message in messages:  # the stream carries timestamps as msgpack Timestamp, as Alpaca's does
                message["t"] = msgpack.Timestamp.from_unix_nano(_parse_ns(message["t"]))
            if messages:
                try:
                    await websocket.send_bytes(msgpack.packb(messages))
                except Exception:
                    self.data_clients.pop(websocket, None)
                    continue
                for message in messages:
                    counts = self.streamed[CHANNELS[message["T"]]]
                    counts[message["S"]] = counts.get(message["S"], 0) + 1

    async def drop_streams(self) -> None:
        for websocket in [*self.trade_clients, *self.data_clients]:
            with contextlib.suppress(Exception):
                await websocket.close(code=1011)
        self.trade_clients.clear()
        self.data_clients.clear()
        self.data_keys.clear()

    def admin_refusal(self, key: str) -> JSONResponse | None:
        """None when `key` is the admin key; else the error to answer (401 without a key, 403 with a wrong one)."""
        if not self.config.admin_key:
            return error(403, 40310001, "admin routes are disabled: the exchange has no admin key")
        if not key:
            return error(401, 40110001, f"admin routes need the admin key in the {ADMIN_HEADER} header")
        if not hmac.compare_digest(key.encode(), self.config.admin_key.encode()):
            return error(403, 40310002, "the admin key is wrong")
        return None

    def authorized(self, key: str, secret: str) -> bool:
        pairs = [(self.config.api_key_id, self.config.api_secret_key), *self.config.extra_keys.items()]
        return any(hmac.compare_digest(key, k) and hmac.compare_digest(secret, s) for k, s in pairs)

    async def serve_trade_stream(self, websocket: WebSocket) -> None:
        if self.faults.refuse_streams:
            await websocket.close(code=1013)
            return
        await self.until_answering()
        await websocket.accept()
        try:
            message = json.loads(await _receive(websocket))
            data = message.get("data", {})
            if message.get("action") not in ("authenticate", "auth") or not self.authorized(
                data.get("key_id", ""), data.get("secret_key", "")
            ):
                await websocket.send_bytes(
                    json.dumps(
                        {"stream": "authorization", "data": {"action": "authenticate", "status": "unauthorized"}}
                    ).encode()
                )
                await websocket.close()
                return
            self.trade_stream_logins.append({"key_id": data.get("key_id", ""), "at_ns": time.time_ns()})
            await websocket.send_bytes(
                json.dumps(
                    {"stream": "authorization", "data": {"action": "authenticate", "status": "authorized"}}
                ).encode()
            )
            while True:
                message = json.loads(await _receive(websocket))
                if message.get("action") == "listen":
                    streams = message.get("data", {}).get("streams", [])
                    if self.faults.half_open_streams:
                        continue  # acknowledged by nobody: a half-open connection
                    if "trade_updates" in streams:
                        self.trade_clients.add(websocket)
                    await websocket.send_bytes(
                        json.dumps({"stream": "listening", "data": {"streams": streams}}).encode()
                    )
        except (WebSocketDisconnect, RuntimeError, json.JSONDecodeError):
            pass
        finally:
            self.trade_clients.discard(websocket)

    async def serve_data_stream(self, websocket: WebSocket, feed: str) -> None:
        if self.faults.refuse_streams:
            await websocket.close(code=1013)
            return
        await self.until_answering()
        await websocket.accept()
        key = ""
        try:
            await websocket.send_bytes(msgpack.packb([{"T": "success", "msg": "connected"}]))
            message = msgpack.unpackb(await _receive_bytes(websocket))
            key, secret = message.get("key", ""), message.get("secret", "")
            if message.get("action") != "auth" or not self.authorized(key, secret):
                await websocket.send_bytes(msgpack.packb([{"T": "error", "code": 402, "msg": "auth failed"}]))
                await websocket.close()
                return
            if key in self.data_keys:
                await websocket.send_bytes(
                    msgpack.packb([{"T": "error", "code": 406, "msg": "connection limit exceeded"}])
                )
                await websocket.close()
                key = ""
                return
            self.data_keys.add(key)
            subscriptions: dict[str, set[str]] = {"trades": set(), "quotes": set(), "bars": set()}
            self.data_clients[websocket] = subscriptions
            await websocket.send_bytes(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
            while True:
                message = msgpack.unpackb(await _receive_bytes(websocket))
                action = message.get("action")
                for channel in ("trades", "quotes", "bars"):
                    names = set(message.get(channel, []))
                    if action == "subscribe":
                        subscriptions[channel] |= names
                    elif action == "unsubscribe":
                        subscriptions[channel] -= names
                if not self.faults.half_open_streams:
                    await websocket.send_bytes(
                        msgpack.packb([{"T": "subscription", **{c: sorted(v) for c, v in subscriptions.items()}}])
                    )
        except (WebSocketDisconnect, RuntimeError, ValueError):
            pass
        finally:
            self.data_clients.pop(websocket, None)
            if key:
                self.data_keys.discard(key)

    # -- JSON shapes -----------------------------------------------------------------------------------------
    def clock_json(self) -> dict[str, Any]:
        exchange = self.exchange
        now = exchange.now_ns
        is_open = 0 <= exchange.minute < MINUTES_PER_SESSION - 1
        next_day = min(exchange.day_index + 1, len(exchange.days) - 1)
        next_open = exchange._session_ns(exchange.day_index if exchange.minute < 0 else next_day, 0)
        return {
            "timestamp": iso(now),
            "is_open": is_open,
            "next_open": iso(next_open),
            "next_close": iso(exchange._session_ns(exchange.day_index, MINUTES_PER_SESSION)),
        }

    def asset_json(self, symbol: str) -> dict[str, Any]:
        return {
            "id": asset_id(symbol),
            "class": "us_equity",
            "exchange": "NASDAQ",
            "symbol": symbol,
            "name": symbol,
            "status": "active",
            "tradable": True,
            "marginable": True,
            "shortable": True,
            "easy_to_borrow": True,
            "fractionable": True,
            "min_order_size": None,
            "min_trade_increment": None,
            "price_increment": None,
            "maintenance_margin_requirement": 30,
            "attributes": ["generated_intraday"],
        }

    def symbols(self, symbols: str) -> list[str]:
        wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in self.exchange.config.symbols]
        if unknown:
            raise ApiError(422, 42210000, f"unknown symbols {unknown}; served: {list(self.exchange.config.symbols)}")
        return wanted

    @staticmethod
    def bar_json(bar: dict[str, Any]) -> dict[str, Any]:
        return {
            "t": iso(bar["t"]),
            "o": bar["o"],
            "h": bar["h"],
            "l": bar["l"],
            "c": bar["c"],
            "v": bar["v"],
            "n": minute_n(bar["v"]),
            "vw": minute_vwap(bar["h"], bar["l"], bar["c"]),
        }

    def default_start_ns(self) -> int:
        """Where a history request without `start` begins: midnight (New York) of the previous trading day."""
        exchange = self.exchange
        return exchange._session_ns(max(0, exchange.day_index - 1), -(9 * 60 + 30))

    def quote_json(self, symbol: str, minute: int, bar: dict[str, Any] | None = None) -> dict[str, Any]:
        bar = bar or self.exchange.bar(symbol, minute)
        hs = half_spread(bar["c"], self.exchange.config.spread_bps)
        return {
            "t": iso(bar["t"] + 59_000_000_000),
            "bp": round(bar["c"] - hs, 4),
            "bs": 1,
            "ap": round(bar["c"] + hs, 4),
            "as": 1,
            "bx": "V",
            "ax": "V",
            "c": ["R"],
            "z": "C",
        }

    @staticmethod
    def trade_json(bar: dict[str, Any]) -> dict[str, Any]:
        return {
            "t": iso(bar["t"] + 59_000_000_000),
            "p": bar["c"],
            "s": max(1, int(bar["v"] // 10)),
            "i": int(bar["t"] // 1_000_000_000),
            "x": "V",
            "c": ["@"],
            "z": "C",
        }

    def paginate(
        self, kind: str, symbols: str, start: str | None, end: str | None, limit: int, page_token: str | None
    ) -> dict[str, Any]:
        """Historical records up to the replay clock (never ahead of it), limit per page, across symbols."""
        wanted = self.symbols(symbols)
        exchange = self.exchange
        start_ns = _parse_ns(start) if start else exchange._session_ns(max(0, exchange.day_index - 1), 0)
        end_ns = min(_parse_ns(end) if end else exchange.now_ns, exchange.now_ns)
        offset = int(base64.urlsafe_b64decode(page_token.encode()).decode()) if page_token else 0
        records: list[tuple[str, dict[str, Any]]] = []
        for symbol in wanted:
            for day_index in range(len(exchange.days)):
                day_start = exchange._session_ns(day_index, 0)
                if day_start > end_ns or exchange._session_ns(day_index, MINUTES_PER_SESSION) < start_ns:
                    continue
                last_minute = MINUTES_PER_SESSION - 1 if day_index < exchange.day_index else exchange.minute
                for minute in range(last_minute + 1):
                    bar = exchange.bar(symbol, minute, day_index)
                    if start_ns <= bar["t"] < end_ns:
                        if kind == "quotes":
                            records.append((symbol, self.quote_json(symbol, minute, bar)))
                        else:
                            records.append((symbol, self.trade_json(bar)))
        page = records[offset : offset + limit]
        grouped: dict[str, list[dict[str, Any]]] = {}
        for symbol, record in page:
            grouped.setdefault(symbol, []).append(record)
        next_token = (
            base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if offset + limit < len(records) else None
        )
        return {kind: grouped, "next_page_token": next_token}


def _parse_ns(text: str) -> int:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1e9)


async def _receive(websocket: WebSocket) -> str:
    message = await websocket.receive()
    if message.get("type") == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message.get("text") or (message.get("bytes") or b"").decode()


async def _receive_bytes(websocket: WebSocket) -> bytes:
    message = await websocket.receive()
    if message.get("type") == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message.get("bytes") or (message.get("text") or "").encode()


__all__ = ["Faults", "Order", "ServerConfig", "create_app"]
