"""Fault injection is seeded and reproducible; the same seed, data and orders give the same fills."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paper_exchange.engine import ApiError, Exchange, ExchangeConfig
from paper_exchange.testing import RunningExchange, admin_headers, start_exchange

pytestmark = pytest.mark.integration
CONFIG = ExchangeConfig(symbols=("AAPL", "MSFT"), start_date="2010-01-04", end_date="2010-01-08")


def headers(exchange: RunningExchange) -> dict[str, str]:
    return {"APCA-API-KEY-ID": exchange.key_id, "APCA-API-SECRET-KEY": exchange.secret_key}


def test_injected_5xx_are_reproducible_from_the_seed() -> None:
    outcomes = []
    for _ in range(2):
        exchange = start_exchange(CONFIG)
        try:
            exchange.set_faults(seed=42, error_5xx_rate=0.3)
            outcomes.append(
                [httpx.get(f"{exchange.url}/v2/clock", headers=headers(exchange)).status_code for _ in range(30)]
            )
        finally:
            exchange.stop()
    assert outcomes[0] == outcomes[1]
    assert 500 in outcomes[0] and 200 in outcomes[0]


def test_rate_limit_burst_and_unknown_fault_names(paper_exchange: RunningExchange) -> None:
    paper_exchange.set_faults(rate_limit_burst=2)
    codes = [httpx.get(f"{paper_exchange.url}/v2/clock", headers=headers(paper_exchange)).status_code for _ in range(3)]
    assert codes == [429, 429, 200]
    response = httpx.put(
        f"{paper_exchange.url}/admin/faults", json={"no_such_fault": 1}, headers=admin_headers(paper_exchange.admin_key)
    )
    assert response.status_code == 422 and "unknown fault settings" in response.json()["message"]


def test_dropped_and_duplicated_trade_update_streams(paper_exchange: RunningExchange) -> None:
    import asyncio
    import json

    import websockets

    async def scenario() -> tuple[list[str], bool]:
        async with websockets.connect(f"{paper_exchange.ws_url}/stream") as ws:
            await ws.send(
                json.dumps(
                    {
                        "action": "authenticate",
                        "data": {"key_id": paper_exchange.key_id, "secret_key": paper_exchange.secret_key},
                    }
                )
            )
            assert json.loads(await ws.recv())["data"]["status"] == "authorized"
            await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
            await ws.recv()
            await asyncio.to_thread(paper_exchange.set_faults, duplicate_trade_updates_rate=1.0, seed=1)
            await asyncio.to_thread(
                httpx.post,
                f"{paper_exchange.url}/v2/orders",
                headers=headers(paper_exchange),
                json={
                    "symbol": "AAPL",
                    "qty": "1",
                    "side": "buy",
                    "type": "market",
                    "time_in_force": "day",
                    "client_order_id": "dup-stream",
                },
            )
            events = [json.loads(await ws.recv())["data"]["event"] for _ in range(4)]
            await asyncio.to_thread(paper_exchange.set_faults, duplicate_trade_updates_rate=0.0, drop_streams=True)
            try:
                await asyncio.wait_for(ws.recv(), 5)
                dropped = False
            except websockets.ConnectionClosed:
                dropped = True
            return events, dropped

    events, dropped = asyncio.run(scenario())
    assert events == ["new", "new", "fill", "fill"]  # every update twice: consumers must dedupe
    assert dropped


def run_sequence(orders: list[dict]) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    exchange = Exchange(CONFIG)
    exchange.advance(1)
    for order in orders:
        try:
            exchange.submit(dict(order))
        except ApiError:
            pass
        exchange.advance(7)
    return [(f.symbol, str(f.qty), str(f.price)) for f in exchange.fills]


ORDERS = st.lists(
    st.fixed_dictionaries(
        {
            "symbol": st.sampled_from(["AAPL", "MSFT"]),
            "side": st.sampled_from(["buy", "sell"]),
            "qty": st.integers(1, 400).map(str),
            "type": st.sampled_from(["market", "limit", "stop"]),
            "time_in_force": st.sampled_from(["day", "gtc", "ioc"]),
            "limit_price": st.decimals("5", "400", places=2).map(str),
            "stop_price": st.decimals("5", "400", places=2).map(str),
        }
    ),
    min_size=1,
    max_size=12,
)


def test_same_seed_data_and_orders_give_the_same_fills() -> None:
    orders = [
        {"symbol": "AAPL", "side": "buy", "qty": "50", "type": "market", "time_in_force": "day"},
        {"symbol": "MSFT", "side": "buy", "qty": "80", "type": "limit", "limit_price": "30.50", "time_in_force": "gtc"},
        {"symbol": "AAPL", "side": "sell", "qty": "20", "type": "stop", "stop_price": "212", "time_in_force": "gtc"},
    ]
    assert run_sequence(orders) == run_sequence(orders)
    assert run_sequence(orders)  # something did fill


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ORDERS)
def test_accounting_invariants_hold_for_random_order_sequences(orders: list[dict]) -> None:  # type: ignore[type-arg]
    exchange = Exchange(CONFIG)
    exchange.advance(1)
    for order in orders:
        payload = {k: v for k, v in order.items() if k not in ("limit_price", "stop_price")}
        if order["type"] == "limit":
            payload["limit_price"] = order["limit_price"]
        if order["type"] == "stop":
            payload["stop_price"] = order["stop_price"]
        try:
            exchange.submit(payload)
        except ApiError as error:
            assert error.status in (403, 422)
        exchange.advance(11)
        # cash + positions value = equity
        long_value, short_value = exchange.position_values()
        assert exchange.cash + long_value + short_value == exchange.equity()
        # position quantities are the net of their fills
        for symbol, position in exchange.positions.items():
            net = sum((f.qty if f.side == "buy" else -f.qty for f in exchange.fills if f.symbol == symbol), Decimal(0))
            assert position.qty == net
    for placed in exchange.orders.values():
        assert placed.filled_qty <= (placed.qty or Decimal(0))  # filled never above ordered
    for fill in exchange.fills:
        # no fill without a price the data reached
        assert Decimal(str(fill.source["low"])) <= fill.base_price <= Decimal(str(fill.source["high"]))
        spread_and_slip = fill.base_price * Decimal("0.0005")
        assert abs(fill.price - fill.base_price) <= spread_and_slip
        placed = exchange.orders[fill.order_id]
        if placed.type == "limit":
            assert fill.price <= placed.limit_price if placed.side == "buy" else fill.price >= placed.limit_price
