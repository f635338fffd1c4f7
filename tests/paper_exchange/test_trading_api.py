"""The paper exchange driven by the real alpaca-py clients only (TradingClient, TradingStream)."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)
from alpaca.trading.stream import TradingStream
from paper_exchange.testing import RunningExchange, start_exchange

pytestmark = pytest.mark.integration


def client_for(exchange: RunningExchange) -> TradingClient:
    client = TradingClient(exchange.key_id, exchange.secret_key, url_override=exchange.url)
    client._retry = 0  # see 429s instead of alpaca-py's built-in 3 s retry sleep
    return client


def assert_accounting(client: TradingClient) -> None:
    account = client.get_account()
    positions = client.get_all_positions()
    market_value = sum(Decimal(p.market_value) for p in positions)
    assert abs(Decimal(account.cash) + market_value - Decimal(account.equity)) <= Decimal("0.02")


def test_account_clock_calendar_assets(paper_exchange: RunningExchange) -> None:
    client = client_for(paper_exchange)
    account = client.get_account()
    assert Decimal(account.cash) == Decimal("100000") == Decimal(account.equity)
    clock = client.get_clock()
    assert clock.is_open is True and clock.next_close > clock.timestamp
    assert {a.symbol for a in client.get_all_assets()} == {"AAPL", "MSFT", "IBM", "GOOG"}
    assert client.get_asset("AAPL").tradable is True
    with pytest.raises(APIError) as missing:
        client.get_asset("NOPE")
    assert missing.value.status_code == 404


def test_market_order_fills_and_moves_position_and_cash(paper_exchange: RunningExchange) -> None:
    client = client_for(paper_exchange)
    order = client.submit_order(
        MarketOrderRequest(
            symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, client_order_id="mkt-1"
        )
    )
    assert order.status == OrderStatus.FILLED and Decimal(order.filled_qty) == 10
    price = Decimal(order.filled_avg_price)
    bar = paper_exchange.exchange.bar("AAPL")
    # Filled at the quote of the last bar: its close plus the half spread and slippage, never outside reason.
    assert Decimal(str(bar["c"])) < price < Decimal(str(bar["c"])) * Decimal("1.001")
    position = client.get_open_position("AAPL")
    assert Decimal(position.qty) == 10 and Decimal(position.avg_entry_price) == price
    assert Decimal(client.get_account().cash) == Decimal("100000") - (price * 10).quantize(Decimal("0.01"))
    assert_accounting(client)
    fill = paper_exchange.exchange.fills[-1]
    assert fill.source["generated"] is True and fill.source["low"] <= float(fill.base_price) <= fill.source["high"]


def test_reused_client_order_id_is_422_even_after_cancel(paper_exchange: RunningExchange) -> None:
    client = client_for(paper_exchange)
    order = client.submit_order(
        LimitOrderRequest(
            symbol="MSFT",
            qty=5,
            side=OrderSide.BUY,
            limit_price=1.00,
            time_in_force=TimeInForce.GTC,
            client_order_id="dup-1",
        )
    )
    client.cancel_order_by_id(order.id)
    assert client.get_order_by_id(order.id).status == OrderStatus.CANCELED
    with pytest.raises(APIError) as reused:
        client.submit_order(
            LimitOrderRequest(
                symbol="MSFT",
                qty=5,
                side=OrderSide.BUY,
                limit_price=1.00,
                time_in_force=TimeInForce.GTC,
                client_order_id="dup-1",
            )
        )
    assert reused.value.status_code == 422 and "client_order_id must be unique" in str(reused.value)


def test_insufficient_buying_power_is_403(paper_exchange: RunningExchange) -> None:
    client = client_for(paper_exchange)
    with pytest.raises(APIError) as refused:
        client.submit_order(
            MarketOrderRequest(symbol="GOOG", qty=100_000, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
        )
    assert refused.value.status_code == 403 and "insufficient buying power" in str(refused.value)


def test_open_orders_reserve_buying_power(paper_exchange: RunningExchange) -> None:
    client = client_for(paper_exchange)
    before = Decimal(client.get_account().buying_power)
    client.submit_order(
        LimitOrderRequest(symbol="IBM", qty=100, side=OrderSide.BUY, limit_price=50, time_in_force=TimeInForce.GTC)
    )
    assert Decimal(client.get_account().buying_power) == before - Decimal(5000)


def test_limit_stop_stop_limit_trailing_orders_fill_only_when_the_data_reaches_them() -> None:
    exchange = start_exchange()
    try:
        client = client_for(exchange)
        last = Decimal(str(exchange.exchange.bar("AAPL")["c"]))
        day_high = Decimal(str(exchange.exchange.day_bars("AAPL").high.max()))
        day_low = Decimal(str(exchange.exchange.day_bars("AAPL").low.min()))
        far_below = client.submit_order(
            LimitOrderRequest(
                symbol="AAPL", qty=1, side=OrderSide.BUY, limit_price=float(day_low - 5), time_in_force=TimeInForce.DAY
            )
        )
        limit = client.submit_order(
            LimitOrderRequest(
                symbol="AAPL",
                qty=1,
                side=OrderSide.BUY,
                limit_price=float(day_low + Decimal("0.05")),
                time_in_force=TimeInForce.GTC,
            )
        )
        stop = client.submit_order(
            StopOrderRequest(
                symbol="AAPL", qty=1, side=OrderSide.BUY, stop_price=float(day_high), time_in_force=TimeInForce.DAY
            )
        )
        stop_limit = client.submit_order(
            StopLimitOrderRequest(
                symbol="AAPL",
                qty=1,
                side=OrderSide.BUY,
                stop_price=float(last + Decimal("0.01")),
                limit_price=float(day_high + 1),
                time_in_force=TimeInForce.DAY,
            )
        )
        client.submit_order(MarketOrderRequest(symbol="AAPL", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
        trailing = client.submit_order(
            TrailingStopOrderRequest(
                symbol="AAPL", qty=2, side=OrderSide.SELL, trail_percent=0.01, time_in_force=TimeInForce.DAY
            )
        )
        assert client.get_order_by_id(limit.id).status == OrderStatus.NEW
        exchange.advance(389)  # the rest of the session
        for order, status in [
            (limit, OrderStatus.FILLED),
            (stop, OrderStatus.FILLED),
            (stop_limit, OrderStatus.FILLED),
            (far_below, OrderStatus.EXPIRED),
        ]:
            assert client.get_order_by_id(order.id).status == status, order.type
        filled_limit = client.get_order_by_id(limit.id)
        assert Decimal(filled_limit.filled_avg_price) <= Decimal(str(filled_limit.limit_price))
        assert Decimal(client.get_order_by_id(stop.id).filled_avg_price) >= day_high  # a buy stop pays up
        trailed = client.get_order_by_id(trailing.id)
        assert trailed.status in (OrderStatus.FILLED, OrderStatus.EXPIRED)
        for fill in exchange.exchange.fills:
            assert fill.source["low"] <= float(fill.base_price) <= fill.source["high"]
        assert_accounting(client)
    finally:
        exchange.stop()


def test_bracket_oco_oto_orders(paper_exchange: RunningExchange) -> None:
    client = client_for(paper_exchange)
    last = Decimal(str(paper_exchange.exchange.bar("MSFT")["c"]))
    bracket = client.submit_order(
        MarketOrderRequest(
            symbol="MSFT",
            qty=10,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=float(last * Decimal("1.5"))),
            stop_loss=StopLossRequest(stop_price=float(last * Decimal("0.5"))),
        )
    )
    assert bracket.status == OrderStatus.FILLED and len(bracket.legs) == 2
    legs = [client.get_order_by_id(leg.id) for leg in bracket.legs]
    assert {leg.status for leg in legs} == {OrderStatus.NEW} and all(leg.side == OrderSide.SELL for leg in legs)
    assert all(Decimal(leg.qty) == 10 for leg in legs)
    # OCO exit of that position: the take-profit is marketable now, so it fills and the stop leg is canceled.
    oco = client.submit_order(
        LimitOrderRequest(
            symbol="MSFT",
            qty=10,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=float(last * Decimal("0.9"))),
            stop_loss=StopLossRequest(stop_price=float(last * Decimal("0.8"))),
        )
    )
    assert oco.status == OrderStatus.FILLED
    assert client.get_order_by_id(oco.legs[0].id).status == OrderStatus.CANCELED
    oto = client.submit_order(
        MarketOrderRequest(
            symbol="IBM",
            qty=3,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            order_class=OrderClass.OTO,
            stop_loss=StopLossRequest(stop_price=1.0),
        )
    )
    assert oto.status == OrderStatus.FILLED and client.get_order_by_id(oto.legs[0].id).status == OrderStatus.NEW


def test_fractional_notional_ioc_fok_replace_cancel_all_and_close(paper_exchange: RunningExchange) -> None:
    client = client_for(paper_exchange)
    fractional = client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=0.5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert Decimal(fractional.filled_qty) == Decimal("0.5")
    notional = client.submit_order(
        MarketOrderRequest(symbol="AAPL", notional=1000, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert notional.status == OrderStatus.FILLED
    assert abs(Decimal(notional.filled_qty) * Decimal(notional.filled_avg_price) - 1000) < Decimal("0.01")
    resting = client.submit_order(
        LimitOrderRequest(symbol="IBM", qty=3, side=OrderSide.BUY, limit_price=10, time_in_force=TimeInForce.GTC)
    )
    replaced = client.replace_order_by_id(resting.id, ReplaceOrderRequest(qty=4, limit_price=11))
    assert replaced.replaces is not None and str(replaced.replaces) == str(resting.id)
    assert client.get_order_by_id(resting.id).status == OrderStatus.REPLACED
    assert Decimal(replaced.qty) == 4 and Decimal(replaced.limit_price) == 11
    client.submit_order(
        LimitOrderRequest(symbol="GOOG", qty=1, side=OrderSide.BUY, limit_price=1, time_in_force=TimeInForce.GTC)
    )
    canceled = client.cancel_orders()
    assert len(canceled) == 2
    assert client.get_orders(GetOrdersRequest(status="open")) == []
    closed = client.close_position("AAPL")
    assert closed.side == OrderSide.SELL
    assert client.get_all_positions() == []
    assert_accounting(client)


def test_ioc_fills_what_the_bar_volume_allows_and_fok_all_or_nothing() -> None:
    from paper_exchange.engine import ExchangeConfig

    exchange = start_exchange(ExchangeConfig(participation=0.0001))
    try:
        client = client_for(exchange)
        capacity = int(exchange.exchange.bar("IBM")["v"] * 0.0001)
        fok = client.submit_order(
            MarketOrderRequest(symbol="IBM", qty=capacity + 5, side=OrderSide.BUY, time_in_force=TimeInForce.FOK)
        )
        assert fok.status == OrderStatus.CANCELED and Decimal(fok.filled_qty) == 0
        ioc = client.submit_order(
            MarketOrderRequest(symbol="IBM", qty=capacity + 5, side=OrderSide.BUY, time_in_force=TimeInForce.IOC)
        )
        assert ioc.status == OrderStatus.CANCELED and Decimal(ioc.filled_qty) == capacity
        gtc = client.submit_order(
            MarketOrderRequest(symbol="IBM", qty=capacity * 3, side=OrderSide.BUY, time_in_force=TimeInForce.GTC)
        )
        assert gtc.status == OrderStatus.NEW  # the IOC took this bar's whole participation
        exchange.advance(1)
        assert client.get_order_by_id(gtc.id).status == OrderStatus.PARTIALLY_FILLED
        exchange.advance(5)  # the rest fills by participation in the following bars
        assert client.get_order_by_id(gtc.id).status == OrderStatus.FILLED
        assert len([f for f in exchange.exchange.fills if f.order_id == str(gtc.id)]) >= 2
    finally:
        exchange.stop()


def test_rate_limit_429_with_headers() -> None:
    exchange = start_exchange(rate_limit_per_minute=5)
    try:
        client = client_for(exchange)
        for _ in range(4):  # the warm-up advance is admin, not counted
            client.get_account()
        client.get_clock()
        with pytest.raises(APIError) as limited:
            client.get_account()
        assert limited.value.status_code == 429
        response = httpx.get(
            f"{exchange.url}/v2/account",
            headers={"APCA-API-KEY-ID": exchange.key_id, "APCA-API-SECRET-KEY": exchange.secret_key},
        )
        assert response.status_code == 429 and response.headers["X-RateLimit-Limit"] == "5"
        assert response.headers["X-RateLimit-Remaining"] == "0" and int(response.headers["X-RateLimit-Reset"]) > 0
    finally:
        exchange.stop()


def test_wrong_keys_are_refused(paper_exchange: RunningExchange) -> None:
    client = TradingClient("PKWRONG", "wrong", url_override=paper_exchange.url)
    with pytest.raises(APIError) as refused:
        client.get_account()
    assert refused.value.status_code == 403


def test_lost_response_is_recovered_by_client_order_id(paper_exchange: RunningExchange) -> None:
    client = client_for(paper_exchange)
    paper_exchange.set_faults(lost_response_rate=1.0, seed=3)
    with pytest.raises(APIError) as lost:
        client.submit_order(
            MarketOrderRequest(
                symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, client_order_id="ambiguous-1"
            )
        )
    assert lost.value.status_code == 504
    paper_exchange.set_faults(lost_response_rate=0.0)
    recovered = client.get_order_by_client_id("ambiguous-1")  # look it up, never post again blindly
    assert recovered.status == OrderStatus.FILLED
    submissions = paper_exchange.admin("GET", "submissions")["submissions"]
    assert [s["client_order_id"] for s in submissions] == ["ambiguous-1"]


def test_trade_updates_stream_delivers_new_and_fill(paper_exchange: RunningExchange) -> None:
    client = client_for(paper_exchange)
    stream = TradingStream(
        paper_exchange.key_id, paper_exchange.secret_key, url_override=f"{paper_exchange.ws_url}/stream"
    )
    events: list[tuple[str, str]] = []
    done = threading.Event()

    async def on_update(update) -> None:  # type: ignore[no-untyped-def]
        events.append((str(update.event), update.order.client_order_id))
        if str(update.event) in ("fill", "TradeEvent.FILL"):
            done.set()

    stream.subscribe_trade_updates(on_update)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    state = paper_exchange.server.config.app.state.paper  # type: ignore[attr-defined]
    while not state.trade_clients and time.monotonic() < deadline:
        time.sleep(0.05)
    client.submit_order(
        MarketOrderRequest(
            symbol="IBM", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, client_order_id="stream-1"
        )
    )
    assert done.wait(10)
    stream.stop()
    kinds = [kind.split(".")[-1].lower() for kind, cid in events if cid == "stream-1"]
    assert kinds == ["new", "fill"]
    asyncio.set_event_loop(asyncio.new_event_loop())
