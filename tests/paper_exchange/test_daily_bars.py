"""/v2/stocks/bars through the real alpaca-py StockHistoricalDataClient: 1Day is the real OHLCV, pages are walked
once each, adjustments change prices as Alpaca documents, 1Hour is the aggregate of the generated 1Min bars, and bad
parameters answer 422 naming the parameter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.models import Bar
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from paper_exchange.testing import RunningExchange, start_exchange
from trading_datasets import daily_ohlcv

pytestmark = pytest.mark.integration

NEW_YORK = ZoneInfo("America/New_York")
SYMBOLS = ["AAPL", "GOOG", "IBM", "MSFT"]
PAGE = 500  # the exchange's page size here: the client must follow next_page_token


@pytest.fixture(scope="module")
def exchange() -> Iterator[RunningExchange]:
    running = start_exchange(max_page_size=PAGE, warm_minutes=0)
    running.advance(150)  # 2010-01-04, minutes 0..149 completed
    try:
        yield running
    finally:
        running.stop()


def client_of(exchange: RunningExchange) -> StockHistoricalDataClient:
    return StockHistoricalDataClient(exchange.key_id, exchange.secret_key, url_override=exchange.url)


def bars(exchange: RunningExchange, **request: object) -> dict[str, list[Bar]]:
    return client_of(exchange).get_stock_bars(StockBarsRequest(**request)).data  # type: ignore[arg-type, union-attr]


def day_of(bar: Bar) -> str:
    return bar.timestamp.astimezone(NEW_YORK).date().isoformat()


def test_daily_bars_are_the_real_ohlcv_and_the_pages_are_walked_once(exchange: RunningExchange) -> None:
    today = str(exchange.exchange.days[0])
    got = bars(exchange, symbol_or_symbols=SYMBOLS, timeframe=TimeFrame.Day, start=dt.datetime(2000, 1, 1))
    assert sorted(got) == SYMBOLS
    assert sum(len(v) for v in got.values()) > 10 * PAGE  # many pages, each followed by the client
    for symbol, series in got.items():
        real = daily_ohlcv(symbol, "bokeh", end=today)
        assert [day_of(b) for b in series] == [str(d) for d in real.dates]  # every day once, in order, none ahead
        assert all(b.timestamp.astimezone(NEW_YORK).time() == dt.time(0, 0) for b in series)  # Alpaca's day stamp
        past = series[:-1]  # today's bar is the session so far (below)
        assert [b.open for b in past] == list(real.open[:-1]) and [b.close for b in past] == list(real.close[:-1])
        assert [b.high for b in past] == list(real.high[:-1]) and [b.low for b in past] == list(real.low[:-1])
        assert [b.volume for b in past] == list(real.volume[:-1])
        assert all(b.trade_count and b.trade_count >= 1 and b.low <= (b.vwap or 0) <= b.high for b in past)
        session = exchange.exchange.day_bars(symbol)  # today: the 150 generated minutes completed so far
        assert series[-1].open == session.open[0] and series[-1].close == session.close[149]
        assert series[-1].high == session.high[:150].max() and series[-1].volume == session.volume[:150].sum()
        assert series[-1].volume < real.volume[-1]  # not the whole real day: nothing ahead of the clock

    limited = bars(exchange, symbol_or_symbols=SYMBOLS, timeframe=TimeFrame.Day, start="2000-01-01", limit=1234)
    walked = [(s, b.timestamp) for s in SYMBOLS for b in got[s]][:1234]
    assert [(s, b.timestamp) for s in sorted(limited) for b in limited[s]] == walked

    descending = bars(exchange, symbol_or_symbols="IBM", timeframe=TimeFrame.Day, start="2000-01-01", sort="desc")
    assert [b.timestamp for b in descending["IBM"]] == [b.timestamp for b in reversed(got["IBM"])]

    window = bars(exchange, symbol_or_symbols="AAPL", timeframe=TimeFrame.Day, start="2008-01-02", end="2008-02-01")
    assert [day_of(b) for b in window["AAPL"]] == [
        str(d) for d in daily_ohlcv("AAPL", "bokeh", "2008-01-02", "2008-01-31").dates
    ]


def test_a_walk_while_the_clock_moves_returns_every_bar_once() -> None:
    running = start_exchange(max_page_size=100)
    try:
        headers = {"APCA-API-KEY-ID": running.key_id, "APCA-API-SECRET-KEY": running.secret_key}
        params = {"symbols": "AAPL,MSFT", "timeframe": "1Min", "start": "2010-01-04T00:00:00Z"}
        running.advance(150)
        seen: list[tuple[str, str]] = []
        token = None
        while True:
            page = httpx.get(
                f"{running.url}/v2/stocks/bars",
                params={**params, "page_token": token} if token else params,
                headers=headers,
            ).json()
            seen += [(s, b["t"]) for s, items in page["bars"].items() for b in items]
            token = page["next_page_token"]
            if token is None:
                break
            running.advance(7)  # bars appear behind the walk (AAPL's, once it has passed) and ahead of it
        assert len(seen) == len(set(seen))  # none twice
        msft = [t for s, t in seen if s == "MSFT"]
        assert msft == sorted(msft) and len(msft) == running.exchange.minute + 1  # MSFT read last: up to the clock
        assert len([t for s, t in seen if s == "AAPL"]) >= 151
    finally:
        running.stop()


def test_adjustment_divides_prices_before_splits_and_dividends(exchange: RunningExchange) -> None:
    def closes(symbol: str, adjustment: Adjustment | None, start: str, end: str) -> dict[str, tuple[float, float]]:
        request = {"adjustment": adjustment} if adjustment else {}
        through = dt.datetime.fromisoformat(end) + dt.timedelta(days=1)  # the client sends a date as midnight UTC
        got = bars(exchange, symbol_or_symbols=symbol, timeframe=TimeFrame.Day, start=start, end=through, **request)
        return {day_of(b): (b.close, b.volume) for b in got[symbol]}

    # AAPL split 2-for-1 on 2005-02-28: before it, split-adjusted prices halve and volumes double.
    raw = closes("AAPL", None, "2005-02-24", "2005-02-28")
    split = closes("AAPL", Adjustment.SPLIT, "2005-02-24", "2005-02-28")
    assert raw["2005-02-25"] == (88.99, 16348400) and split["2005-02-25"] == (44.495, 32696800)
    assert split["2005-02-28"] == raw["2005-02-28"]  # on and after the ex-date nothing changes
    assert closes("AAPL", Adjustment.DIVIDEND, "2005-02-24", "2005-02-28") == raw  # AAPL paid no dividend then
    assert closes("AAPL", Adjustment.RAW, "2005-02-24", "2005-02-28") == raw

    # MSFT's special dividend of $3 (ex 2004-11-15): dividend-adjusted prices before it drop by ~10% more than after
    # it (both carry the later quarterly dividends up to the replay day), volume stays.
    raw = closes("MSFT", None, "2004-11-10", "2004-11-16")
    dividend = closes("MSFT", Adjustment.DIVIDEND, "2004-11-10", "2004-11-16")
    before = raw["2004-11-12"][0] / dividend["2004-11-12"][0]
    after = raw["2004-11-15"][0] / dividend["2004-11-15"][0]
    assert 1.10 < before / after < 1.12 and dividend["2004-11-12"][1] == raw["2004-11-12"][1]
    assert closes("MSFT", Adjustment.SPLIT, "2004-11-10", "2004-11-16") == raw

    # `all` is the source's adjusted close, re-based to the replay day: nothing after the clock is applied.
    today = str(exchange.exchange.days[0])
    real = daily_ohlcv("IBM", "bokeh", "2003-01-01", today)
    assert real.adj_close is not None
    base = real.adj_close[-1] / real.close[-1]
    adjusted = closes("IBM", Adjustment.ALL, "2003-01-01", today)
    expected = real.adj_close[:-1] / base
    assert np.allclose([adjusted[str(d)][0] for d in real.dates[:-1]], expected, rtol=1e-5, atol=1e-4)
    assert not np.allclose([adjusted[str(d)][0] for d in real.dates[:-1]], real.close[:-1], rtol=1e-3)


def test_hour_bars_are_the_aggregate_of_the_generated_minutes(exchange: RunningExchange) -> None:
    for start, end in (("2009-12-31T00:00:00Z", "2010-01-01T00:00:00Z"), ("2010-01-04T00:00:00Z", None)):
        window = {"start": start, **({"end": end} if end else {})}
        minutes = bars(exchange, symbol_or_symbols=["AAPL", "IBM"], timeframe=TimeFrame.Minute, **window)
        hours = bars(exchange, symbol_or_symbols=["AAPL", "IBM"], timeframe=TimeFrame.Hour, **window)
        for symbol in ("AAPL", "IBM"):
            groups: dict[dt.datetime, list[Bar]] = {}
            for minute in minutes[symbol]:
                groups.setdefault(minute.timestamp.replace(minute=0), []).append(minute)
            assert [h.timestamp for h in hours[symbol]] == sorted(groups)
            for hour in hours[symbol]:
                group = groups[hour.timestamp]
                assert hour.open == group[0].open and hour.close == group[-1].close
                assert hour.high == max(m.high for m in group) and hour.low == min(m.low for m in group)
                assert hour.volume == sum(m.volume for m in group)
                assert hour.trade_count == sum(m.trade_count or 0 for m in group)
                vwap = sum((m.vwap or 0) * m.volume for m in group) / sum(m.volume for m in group)
                assert hour.vwap == pytest.approx(vwap, abs=1e-4)
            if end:  # a whole past session: seven hours (09:00 holds 09:30-09:59), and the real day
                assert len(hours[symbol]) == 7 and len(minutes[symbol]) == 390
                day = daily_ohlcv(symbol, "bokeh", "2009-12-31", "2009-12-31")
                assert hours[symbol][0].open == day.open[0] and hours[symbol][-1].close == day.close[0]
                assert max(h.high for h in hours[symbol]) == day.high[0]
                assert sum(h.volume for h in hours[symbol]) == day.volume[0]
            else:  # today: 150 minutes so far, the current hour partial
                assert len(minutes[symbol]) == 150 and [len(groups[t]) for t in sorted(groups)] == [30, 60, 60]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"timeframe": "1Week"}, "timeframe"),
        ({"timeframe": "90Min"}, "timeframe"),
        ({"adjustment": "splits"}, "adjustment"),
        ({"adjustment": "raw,split"}, "adjustment"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"sort": "up"}, "sort"),
        ({"feed": "nasdaq"}, "feed"),
        ({"currency": "EUR"}, "currency"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2009-01-02", "end": "2009-01-01"}, "end"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"symbols": "AAPL,ZZZZ"}, "symbols"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    exchange: RunningExchange, params: dict[str, str], named: str
) -> None:
    headers = {"APCA-API-KEY-ID": exchange.key_id, "APCA-API-SECRET-KEY": exchange.secret_key}
    query = {"symbols": "AAPL", "timeframe": "1Day", "start": "2009-01-02", **params}
    response = httpx.get(f"{exchange.url}/v2/stocks/bars", params=query, headers=headers)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 42210000 and named in body["message"]


def test_bars_say_whether_they_are_real_or_generated(exchange: RunningExchange) -> None:
    headers = {"APCA-API-KEY-ID": exchange.key_id, "APCA-API-SECRET-KEY": exchange.secret_key}
    for timeframe, origin in (("1Day", "real"), ("1Hour", "generated"), ("1Min", "generated")):
        query = {"symbols": "AAPL", "timeframe": timeframe, "start": "2009-12-31"}
        response = httpx.get(f"{exchange.url}/v2/stocks/bars", params=query, headers=headers)
        assert response.status_code == 200 and response.headers["X-Data-Origin"] == origin


def test_the_client_sees_alpacas_error(exchange: RunningExchange) -> None:
    with pytest.raises(APIError) as raised:
        bars(exchange, symbol_or_symbols="AAPL", timeframe=TimeFrame(1, TimeFrameUnit.Week), start="2009-01-02")
    assert raised.value.status_code == 422 and "timeframe" in str(raised.value)
