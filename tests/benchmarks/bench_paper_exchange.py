"""Paper exchange: order round trip (submit -> accepted -> filled, seen on the trade_updates stream) with the real
alpaca-py TradingClient, the stocks stream's throughput (bars per second to one subscriber), and historical bars
through alpaca-py's StockHistoricalDataClient (1Day over the whole history, 1Hour over a year: bars per second).

`submits_against` measures one submit against a running exchange without touching its positions (a buy limit far
below the market, cancelled right after): the trading-path benchmark's floor of execution's broker submit."""

from __future__ import annotations

import asyncio
import json
import time

import msgpack
import websockets
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from paper_exchange.engine import ExchangeConfig
from paper_exchange.testing import admin_call, start_exchange

from tests.benchmarks.stats import latency_summary, write_results

ORDERS = 500
STREAM_MINUTES = 2_000


async def order_round_trips(url: str, ws_url: str, key: str, secret: str, admin_key: str) -> dict[str, object]:
    client = TradingClient(key, secret, url_override=url)
    filled_at: dict[str, int] = {}
    accepted_at: dict[str, int] = {}
    async with websockets.connect(f"{ws_url}/stream") as ws:
        await ws.send(json.dumps({"action": "authenticate", "data": {"key_id": key, "secret_key": secret}}))
        await ws.recv()
        await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        await ws.recv()

        async def listen() -> None:
            async for raw in ws:
                data = json.loads(raw)["data"]
                cid = data["order"]["client_order_id"]
                now = time.perf_counter_ns()
                if data["event"] == "new":
                    accepted_at.setdefault(cid, now)
                elif data["event"] == "fill":
                    filled_at[cid] = now

        listener = asyncio.create_task(listen())
        submitted: dict[str, int] = {}
        submitted_wall: dict[str, int] = {}  # the exchange stamps arrival on the same (wall) clock
        http_latency = []
        for i in range(ORDERS):
            cid = f"bench-{i}"
            submitted_wall[cid] = time.time_ns()
            submitted[cid] = time.perf_counter_ns()
            await asyncio.to_thread(
                client.submit_order,
                MarketOrderRequest(
                    symbol="AAPL",
                    qty=1,
                    side=OrderSide.BUY if i % 2 == 0 else OrderSide.SELL,
                    time_in_force=TimeInForce.DAY,
                    client_order_id=cid,
                ),
            )
            http_latency.append(time.perf_counter_ns() - submitted[cid])
            while cid not in filled_at:
                await asyncio.sleep(0)
        listener.cancel()
    arrivals = (await asyncio.to_thread(admin_call, url, admin_key, "GET", "submissions"))["submissions"]
    return {
        "submit_http_round_trip": latency_summary(http_latency),
        # what the trading-path benchmark's last stage is: the client's call until the exchange's handler runs
        "submit_to_exchange_handler": latency_summary(
            [
                a["received_ns"] - submitted_wall[a["client_order_id"]]
                for a in arrivals
                if a["client_order_id"] in submitted_wall
            ]
        ),
        "submit_to_accepted_on_stream": latency_summary([accepted_at[c] - submitted[c] for c in submitted]),
        "submit_to_filled_on_stream": latency_summary([filled_at[c] - submitted[c] for c in submitted]),
    }


FLOOR_ORDER_PREFIX = "bench-floor-"


async def submits_against(
    url: str,
    key: str,
    secret: str,
    admin_key: str,
    seconds: float,
    interval_s: float = 0.25,
    symbol: str = "AAPL",
) -> dict[str, object]:
    """alpaca-py's submit_order in a thread (as execution submits) against a running exchange, for `seconds`: a buy
    limit of 1 share at $0.01 (it never fills, so no position changes), cancelled as soon as it is accepted. Measured
    from the call to the exchange's handler (its `received_ns`, the trading path's end point) and the whole HTTP
    round trip. Each order's new/canceled trade updates reach the platform's execution service like any other."""
    client = TradingClient(key, secret, url_override=url)
    submitted_wall: dict[str, int] = {}
    round_trip: list[int] = []
    failures = 0
    deadline = time.monotonic() + seconds
    next_submit = time.monotonic()
    i = 0
    while time.monotonic() < deadline:
        cid = f"{FLOOR_ORDER_PREFIX}{time.time_ns()}-{i}"
        i += 1
        request = LimitOrderRequest(
            symbol=symbol,
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=0.01,
            client_order_id=cid,
        )
        started = time.perf_counter_ns()
        submitted_wall[cid] = time.time_ns()
        try:
            order = await asyncio.to_thread(client.submit_order, request)
            round_trip.append(time.perf_counter_ns() - started)
            await asyncio.to_thread(client.cancel_order_by_id, order.id)  # type: ignore[union-attr]
        except APIError:  # e.g. the replay's session closed: not a sample
            failures += 1
        next_submit += interval_s
        await asyncio.sleep(max(0.0, next_submit - time.monotonic()))
    arrivals = (await asyncio.to_thread(admin_call, url, admin_key, "GET", "submissions"))["submissions"]
    to_handler = [
        a["received_ns"] - submitted_wall[a["client_order_id"]]
        for a in arrivals
        if a["client_order_id"] in submitted_wall
    ]
    return {
        "submit_to_exchange_handler": latency_summary(to_handler),
        "submit_http_round_trip": latency_summary(round_trip),
        "failures": failures,
        "interval_ms": interval_s * 1000,
    }


async def stream_throughput(running) -> dict[str, object]:  # type: ignore[no-untyped-def]
    received = 0
    async with websockets.connect(f"{running.ws_url}/v2/iex") as ws:
        await ws.recv()
        await ws.send(msgpack.packb({"action": "auth", "key": running.key_id, "secret": running.secret_key}))
        await ws.recv()
        await ws.send(msgpack.packb({"action": "subscribe", "bars": ["*"], "quotes": ["*"], "trades": ["*"]}))
        await ws.recv()
        started = time.perf_counter()
        advance = asyncio.create_task(asyncio.to_thread(running.advance, STREAM_MINUTES))
        expected = STREAM_MINUTES * 4 * 3  # four symbols, bar + quote + trade each minute
        while received < expected:
            received += len(msgpack.unpackb(await ws.recv()))
        elapsed = time.perf_counter() - started
        await advance
    return {
        "stream_messages": received,
        "stream_messages_per_s": round(received / elapsed),
        "simulated_minutes_per_s": round(STREAM_MINUTES / elapsed),
    }


def historical_bars(running) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Wall time of whole walks over the pages (10,000 bars each) the client makes, first call (cold) and again."""
    client = StockHistoricalDataClient(running.key_id, running.secret_key, url_override=running.url)
    figures: dict[str, object] = {}
    walks = {
        "daily_4_symbols_since_2000": StockBarsRequest(
            symbol_or_symbols=["AAPL", "MSFT", "IBM", "GOOG"], timeframe=TimeFrame.Day, start="2000-01-01"
        ),
        "hourly_1_symbol_2009": StockBarsRequest(
            symbol_or_symbols="AAPL", timeframe=TimeFrame.Hour, start="2009-01-01", end="2010-01-01"
        ),
    }
    for name, request in walks.items():
        for run in ("cold", "warm"):
            started = time.perf_counter()
            got = client.get_stock_bars(request).data  # type: ignore[union-attr]
            elapsed = time.perf_counter() - started
            count = sum(len(v) for v in got.values())
            figures[f"bars_{name}_{run}"] = {
                "bars": count,
                "seconds": round(elapsed, 3),
                "bars_per_s": round(count / elapsed),
            }
    return figures


def main() -> None:
    running = start_exchange(ExchangeConfig(), rate_limit_per_minute=1_000_000)
    try:
        figures = asyncio.run(
            order_round_trips(running.url, running.ws_url, running.key_id, running.secret_key, running.admin_key)
        )
        figures.update(asyncio.run(stream_throughput(running)))
        figures.update(historical_bars(running))
    finally:
        running.stop()
    figures["note"] = "alpaca-py TradingClient (sync, in a thread) and a websocket listener in one process"
    write_results("paper_exchange", figures)


if __name__ == "__main__":
    main()
