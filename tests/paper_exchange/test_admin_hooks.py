"""Admin hooks the fault tests and load benchmarks read: the `unresponsive_s` fault (the exchange stops answering for a
while: requests hang, streams go silent; it handles nothing it was asked meanwhile and answers again by itself), and
`/admin/streamed`, the market data sent on the stocks stream per channel and symbol."""

from __future__ import annotations

import httpx
import pytest
from paper_exchange.engine import ExchangeConfig
from paper_exchange.testing import start_exchange
from trading_platform.testing.waiting import wait_for

pytestmark = pytest.mark.integration


def test_unresponsive_exchange_holds_requests_handles_none_and_comes_back() -> None:
    exchange = start_exchange(ExchangeConfig(symbols=("AAPL",), start_date="2010-01-04", end_date="2010-01-08"))
    keys = {"APCA-API-KEY-ID": exchange.key_id, "APCA-API-SECRET-KEY": exchange.secret_key}
    order = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
    try:
        faults = exchange.set_faults(unresponsive_s=5)
        assert faults["unresponsive_s"] == 0 and 0 < faults["unresponsive_for_s"] <= 5  # one shot, counting down
        with pytest.raises(httpx.TimeoutException):  # no answer, not even an error
            httpx.post(f"{exchange.url}/v2/orders", headers=keys, json={**order, "client_order_id": "held"}, timeout=1)
        assert httpx.get(f"{exchange.url}/healthz", timeout=1).status_code == 200  # the operator still sees it
        assert exchange.advance(1)["moved"] == 1  # the market goes on

        wait_for(lambda: exchange.admin("GET", "faults")["unresponsive_for_s"] == 0, 10, "the window to end")
        assert "held" not in [s["client_order_id"] for s in exchange.admin("GET", "submissions")["submissions"]]
        placed = httpx.post(f"{exchange.url}/v2/orders", headers=keys, json={**order, "client_order_id": "after"})
        assert placed.status_code == 200, placed.text
        (record,) = exchange.admin("GET", "submissions")["submissions"]
        assert (record["client_order_id"], record["symbol"], record["side"], record["qty"]) == (
            "after",
            "AAPL",
            "buy",
            "1",
        )
    finally:
        exchange.stop()


def test_a_request_held_by_the_fault_is_answered_503_and_not_handled() -> None:
    exchange = start_exchange(ExchangeConfig(symbols=("AAPL",), start_date="2010-01-04", end_date="2010-01-08"))
    keys = {"APCA-API-KEY-ID": exchange.key_id, "APCA-API-SECRET-KEY": exchange.secret_key}
    try:
        exchange.set_faults(unresponsive_s=1)
        held = httpx.post(
            f"{exchange.url}/v2/orders",
            headers=keys,
            json={"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"},
            timeout=30,
        )
        assert held.status_code == 503 and "unresponsive" in held.json()["message"]
        assert exchange.admin("GET", "submissions")["submissions"] == []
    finally:
        exchange.stop()


def test_streamed_counts_what_the_stocks_stream_sent_per_channel_and_symbol() -> None:
    import asyncio

    import msgpack
    import websockets

    exchange = start_exchange(ExchangeConfig(symbols=("AAPL", "MSFT"), start_date="2010-01-04", end_date="2010-01-08"))

    async def listen() -> list[dict[str, object]]:
        received: list[dict[str, object]] = []
        async with websockets.connect(f"{exchange.ws_url}/v2/iex") as ws:
            await ws.recv()
            await ws.send(msgpack.packb({"action": "auth", "key": exchange.key_id, "secret": exchange.secret_key}))
            await ws.recv()
            await ws.send(msgpack.packb({"action": "subscribe", "bars": ["AAPL", "MSFT"], "quotes": ["AAPL"]}))
            await ws.recv()  # the subscription
            await asyncio.to_thread(exchange.advance, 3)
            while len(received) < 9:
                received += msgpack.unpackb(await asyncio.wait_for(ws.recv(), 10), timestamp=3)
        return received

    try:
        received = asyncio.run(listen())
        counted: dict[str, dict[str, int]] = {"trades": {}, "quotes": {}, "bars": {}}
        for message in received:
            channel = {"t": "trades", "q": "quotes", "b": "bars"}[str(message["T"])]
            counted[channel][str(message["S"])] = counted[channel].get(str(message["S"]), 0) + 1
        assert counted == {"trades": {}, "quotes": {"AAPL": 3}, "bars": {"AAPL": 3, "MSFT": 3}}
        assert exchange.admin("GET", "streamed")["streamed"] == counted
    finally:
        exchange.stop()
