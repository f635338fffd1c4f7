"""Market data through the real alpaca-py clients: historical REST with pagination, latest values, the stocks stream."""

from __future__ import annotations

import threading
import time

import pytest
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.requests import StockBarsRequest, StockLatestBarRequest, StockLatestQuoteRequest
from alpaca.data.timeframe import TimeFrame
from paper_exchange.testing import RunningExchange

pytestmark = pytest.mark.integration


def test_historical_bars_paginate_and_never_run_ahead_of_the_replay_clock(paper_exchange: RunningExchange) -> None:
    paper_exchange.advance(120)
    client = StockHistoricalDataClient(
        paper_exchange.key_id, paper_exchange.secret_key, url_override=paper_exchange.url
    )
    day = paper_exchange.exchange.days[0]
    bars = client.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=["AAPL", "MSFT"], timeframe=TimeFrame.Minute, start=f"{day}T14:30:00Z", limit=500
        )
    )
    aapl = bars.data["AAPL"]
    assert len(aapl) == 121 and len(bars.data["MSFT"]) == 121  # minutes 0..120: nothing from the future
    generated = paper_exchange.exchange.day_bars("AAPL")
    assert [b.close for b in aapl] == [float(c) for c in generated.close[:121]]
    assert all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in aapl)
    assert [b.timestamp for b in aapl] == sorted(b.timestamp for b in aapl)

    latest_bar = client.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert latest_bar.close == aapl[-1].close
    quote = client.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert quote.bid_price < latest_bar.close < quote.ask_price


def test_stock_stream_delivers_subscribed_bars_and_refuses_a_second_connection(paper_exchange: RunningExchange) -> None:
    url = f"{paper_exchange.ws_url}/v2/iex"
    stream = StockDataStream(paper_exchange.key_id, paper_exchange.secret_key, url_override=url)
    received: list[tuple[str, float]] = []
    quotes: list[str] = []
    got_three = threading.Event()

    async def on_bar(bar) -> None:  # type: ignore[no-untyped-def]
        received.append((bar.symbol, bar.close))
        if len(received) >= 3:
            got_three.set()

    async def on_quote(quote) -> None:  # type: ignore[no-untyped-def]
        quotes.append(quote.symbol)

    stream.subscribe_bars(on_bar, "MSFT")
    stream.subscribe_quotes(on_quote, "IBM")
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    state = paper_exchange.server.config.app.state.paper  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(s["bars"] for s in state.data_clients.values()):
        time.sleep(0.05)

    import asyncio

    import msgpack
    import websockets

    async def second_connection() -> list[dict]:  # type: ignore[type-arg]
        async with websockets.connect(url) as ws:
            await ws.recv()
            await ws.send(
                msgpack.packb({"action": "auth", "key": paper_exchange.key_id, "secret": paper_exchange.secret_key})
            )
            return msgpack.unpackb(await ws.recv())  # type: ignore[no-any-return]

    refused = asyncio.run(second_connection())
    assert refused[0]["T"] == "error" and refused[0]["code"] == 406

    for _ in range(3):
        paper_exchange.advance(1)
    assert got_three.wait(10)
    stream.stop()
    generated = paper_exchange.exchange.day_bars("MSFT")
    assert received[:3] == [("MSFT", float(generated.close[m])) for m in (1, 2, 3)]
    assert set(quotes) == {"IBM"}


def test_es_tick_tape_replays_real_ticks_in_order(paper_exchange: RunningExchange) -> None:
    from trading_datasets import es_ticks

    url = f"{paper_exchange.ws_url}/v2/iex"
    stream = StockDataStream(paper_exchange.key_id, paper_exchange.secret_key, url_override=url)
    trades: list[tuple[float, float]] = []
    done = threading.Event()

    async def on_trade(trade) -> None:  # type: ignore[no-untyped-def]
        trades.append((trade.price, trade.size))
        if len(trades) >= 50:
            done.set()

    stream.subscribe_trades(on_trade, "ES")
    threading.Thread(target=stream.run, daemon=True).start()
    state = paper_exchange.server.config.app.state.paper  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(s["trades"] for s in state.data_clients.values()):
        time.sleep(0.05)
    assert paper_exchange.admin("POST", "tape", params={"ticks": 50}) == {"sent": 50, "position": 50}
    assert done.wait(10)
    stream.stop()
    tape = es_ticks()
    assert trades == [(float(p), float(s)) for p, s in zip(tape.price[:50], tape.size[:50], strict=True)]
