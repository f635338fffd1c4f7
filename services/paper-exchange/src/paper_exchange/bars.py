"""Historical bars as Alpaca's `GET /v2/stocks/bars` serves them: 1Day from the real daily OHLCV, 1Min and 1Hour
(any N Min / N Hour) from the same generated minutes the replay trades on, with Alpaca's parameters.

- Timeframes: `1Day` (also `1D`) is the real day (open, high, low, close, volume as the data has them); `NMin` /
  `NT` (1-59) and `NHour` / `NH` (1-23) aggregate the generated minute bars into clock-aligned buckets in New York
  time (the 09:00 hour bar holds 09:30-09:59): open of the first minute, high/low the extremes, close of the last,
  volume and trade count summed, VWAP volume-weighted. The generator reproduces each real day's open, high, low,
  close and volume exactly, so a day's minutes aggregate to its 1Day bar.
- Never ahead of the replay clock: a bar holds only minutes that have completed; the current day's 1Day bar (and the
  current hour's bar) is the aggregate of the minutes so far, as Alpaca's bar of the running session is.
- History: every day of the source up to the replay clock, including the days before the replay's start.
- `adjustment`: raw (default), split, dividend, all (or a comma list of split, dividend, spin-off): prices of a
  bar are divided by the corporate actions with an ex-date after the bar and on or before the replay day (volume is
  multiplied by the split ratios), so nothing after the replay clock leaks in (`corporate_actions`).
- `sort` asc/desc orders each symbol's bars by time; symbols come in alphabetical order. `limit` (1-10000, default
  1000) caps a page, and a server may return fewer (`max_page_size`); `next_page_token` names the last bar returned
  (symbol and time), so a walk over the pages returns every bar once even while the clock moves.
- `feed` is one of Alpaca's feeds (all of them serve the same replay); `currency` must be USD; `asof` is accepted
  (no symbol here was renamed).

Bad parameters answer 422 with Alpaca's code 42210000 and a message that names the parameter.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

from paper_exchange.engine import NEW_YORK, ApiError, Exchange, iso
from paper_exchange.intraday import MINUTES_PER_SESSION, MinuteBars, generate_day

INVALID = 42210000  # Alpaca's code for an invalid market-data request
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1000
FEEDS = ("sip", "iex", "delayed_sip", "otc", "boats", "overnight")
ADJUSTMENTS = ("raw", "split", "dividend", "spin-off", "all")
SESSION_OPEN_MINUTE = 9 * 60 + 30  # minutes after midnight New York time
# A factor change of the adjusted close this close to a ratio p/q (q <= 4, ratio >= 1.2 or <= 1/1.2) is a split.
SPLIT_TOLERANCE = 0.01
NOISE = 1e-6  # relative change of the adjustment factor below which nothing happened (rounding of the source)


def invalid(message: str) -> ApiError:
    return ApiError(422, INVALID, message)


# -- corporate actions ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorporateActions:
    """One symbol's corporate actions as the source's adjusted close shows them: on each ex-date, the ratio by which
    prices before it are divided. A split's ratio is its share ratio (2 for 2-for-1); a dividend's is
    1 / (1 - dividend / previous close), Yahoo's and Alpaca's multiplicative adjustment."""

    dates: np.ndarray  # datetime64[D], ascending
    split: np.ndarray  # ratio per date (1 where it is a dividend)
    dividend: np.ndarray  # ratio per date (1 where it is a split)

    @classmethod
    def none(cls) -> CorporateActions:
        return cls(np.array([], dtype="datetime64[D]"), np.array([]), np.array([]))

    @classmethod
    def from_adjusted_close(
        cls, dates: np.ndarray, close: np.ndarray, adj_close: np.ndarray | None
    ) -> CorporateActions:
        if adj_close is None or len(dates) < 2:
            return cls.none()
        factor = adj_close / close
        ratio = factor[1:] / factor[:-1]
        events = np.flatnonzero(np.abs(ratio - 1.0) > NOISE)
        split, dividend = [], []
        for index in events:
            value = float(ratio[index])
            simple = Fraction(value).limit_denominator(4)
            is_split = (value >= 1.2 or value <= 1 / 1.2) and abs(value / float(simple) - 1) < SPLIT_TOLERANCE
            split.append(float(simple) if is_split else 1.0)
            dividend.append(1.0 if is_split else value)
        return cls(dates[events + 1], np.array(split), np.array(dividend))

    def factors(
        self, bar_dates: np.ndarray, as_of: np.datetime64, kinds: frozenset[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(price divisor, volume multiplier) per bar date: the actions of `kinds` with bar date < ex-date <= as_of."""
        price = np.ones(len(bar_dates))
        volume = np.ones(len(bar_dates))
        for date, split, dividend in zip(self.dates, self.split, self.dividend, strict=True):
            if date > as_of:
                break
            before = bar_dates < date
            ratio = (split if "split" in kinds else 1.0) * (dividend if "dividend" in kinds else 1.0)
            price[before] *= ratio
            if "split" in kinds:
                volume[before] *= split
        return price, volume


def parse_adjustment(value: str | None) -> frozenset[str]:
    """The kinds of action to adjust for: {} for raw, {split, dividend} for all."""
    if value is None:
        return frozenset()
    parts = value.split(",")
    if any(p not in ADJUSTMENTS for p in parts) or len(set(parts)) != len(parts):
        raise invalid(f"invalid adjustment {value!r}: one of {', '.join(ADJUSTMENTS)}, or a comma list of them")
    if "raw" in parts and len(parts) > 1:
        raise invalid(f"invalid adjustment {value!r}: raw cannot be combined with another adjustment")
    kinds = set(parts) - {"raw"}
    if "all" in kinds:
        kinds = {"split", "dividend", "spin-off"}
    return frozenset(kinds)


# -- request parameters -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timeframe:
    minutes: int  # bucket size in minutes; 0 = one bar per day (the real daily bar)
    label: str

    @property
    def daily(self) -> bool:
        return self.minutes == 0


def parse_timeframe(value: str) -> Timeframe:
    units = {"Min": 1, "T": 1, "Hour": 60, "H": 60, "Day": 0, "D": 0}
    for unit, size in units.items():
        amount = value.removesuffix(unit)
        if amount != value and amount.isdigit():
            count = int(amount)
            if size == 0 and count == 1:
                return Timeframe(0, value)
            if (size == 1 and 1 <= count <= 59) or (size == 60 and 1 <= count <= 23):
                return Timeframe(size * count, value)
    raise invalid(
        f"invalid timeframe {value!r}: served are 1Day (real daily OHLCV) and 1-59Min, 1-23Hour (generated from the "
        "real day)"
    )


def parse_time(name: str, value: str | None) -> int | None:
    """An RFC-3339 time (naive = UTC) or a date (its midnight UTC, as alpaca-py sends a date), in UNIX ns."""
    if value is None or value == "":
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"invalid {name} {value!r}: an RFC-3339 time (2010-01-04T14:30:00Z) or a date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1e9)


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    if not value.lstrip("-").isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise invalid(f"invalid limit {value!r}: a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def encode_token(symbol: str, t_ns: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([symbol, t_ns]).encode()).decode()


def decode_token(value: str) -> tuple[str, int]:
    try:
        symbol, t_ns = json.loads(base64.urlsafe_b64decode(value.encode()))
        if not isinstance(symbol, str) or not isinstance(t_ns, int):
            raise ValueError(value)
    except (ValueError, TypeError):
        raise invalid(f"invalid page_token {value!r}: pass the next_page_token of the previous page") from None
    return symbol, t_ns


@dataclass(frozen=True)
class BarsRequest:
    symbols: list[str]
    timeframe: Timeframe
    start_ns: int | None
    end_ns: int | None
    limit: int
    kinds: frozenset[str]
    descending: bool
    after: tuple[str, int] | None


def parse_request(params: dict[str, str], served: tuple[str, ...]) -> BarsRequest:
    symbols_text = params.get("symbols") or ""
    wanted = sorted({s.strip().upper() for s in symbols_text.split(",") if s.strip()})
    if not wanted:
        raise invalid("invalid symbols: at least one symbol is required")
    unknown = [s for s in wanted if s not in served]
    if unknown:
        raise invalid(f"invalid symbols: unknown {unknown}; served: {list(served)}")
    feed = params.get("feed")
    if feed is not None and feed not in FEEDS:
        raise invalid(f"invalid feed {feed!r}: one of {', '.join(FEEDS)}")
    currency = params.get("currency")
    if currency is not None and currency.upper() != "USD":
        raise invalid(f"invalid currency {currency!r}: prices here are in USD only")
    sort = params.get("sort") or "asc"
    if sort not in ("asc", "desc"):
        raise invalid(f"invalid sort {sort!r}: asc or desc")
    start_ns, end_ns = parse_time("start", params.get("start")), parse_time("end", params.get("end"))
    if start_ns is not None and end_ns is not None and end_ns < start_ns:
        raise invalid("invalid end: end is before start")
    token = params.get("page_token")
    return BarsRequest(
        wanted,
        parse_timeframe(params.get("timeframe") or ""),
        start_ns,
        end_ns,
        parse_limit(params.get("limit")),
        parse_adjustment(params.get("adjustment")),
        sort == "desc",
        decode_token(token) if token else None,
    )


# -- the history ------------------------------------------------------------------------------------------------
def midnight_ns(date: np.datetime64) -> int:
    day = date.astype(dt.date)
    return int(dt.datetime.combine(day, dt.time(0, 0), tzinfo=NEW_YORK).timestamp() * 1e9)


def minute_ns(date: np.datetime64, minute_of_day: int) -> int:
    return midnight_ns(date) + minute_of_day * 60_000_000_000


@lru_cache(maxsize=2048)
def _generated(symbol: str, date: str, o: float, h: float, low: float, c: float, v: float, seed: int) -> MinuteBars:
    return generate_day(symbol, np.datetime64(date, "D"), o, h, low, c, v, seed)


def _extends(full: Any, given: Any) -> bool:
    """Whether `full` holds every day of `given` with the same bars (the replay's window of the same source)."""
    positions = np.searchsorted(full.dates, given.dates)
    if len(given) == 0 or positions[-1] >= len(full.dates):
        return False
    return bool(
        np.array_equal(full.dates[positions], given.dates) and np.array_equal(full.close[positions], given.close)
    )


class BarHistory:
    """The bars a request may see: every day of the source up to the replay clock, per symbol."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self._daily: dict[str, Any] = {}
        self._actions: dict[str, CorporateActions] = {}
        self._midnight: dict[str, np.ndarray] = {}

    def daily(self, symbol: str) -> Any:
        """The symbol's whole real daily series up to the replay's end (the replay's own days when it was given
        daily bars directly)."""
        if symbol not in self._daily:
            from trading_datasets import daily_ohlcv

            config = self.exchange.config
            given = self.exchange.daily[symbol]
            try:
                full = daily_ohlcv(symbol, config.source, end=config.end_date)
            except LookupError:
                full = given
            self._daily[symbol] = full if _extends(full, given) else given
            self._actions[symbol] = CorporateActions.from_adjusted_close(
                self._daily[symbol].dates, self._daily[symbol].close, getattr(self._daily[symbol], "adj_close", None)
            )
        return self._daily[symbol]

    def actions(self, symbol: str) -> CorporateActions:
        self.daily(symbol)
        return self._actions[symbol]

    @property
    def today(self) -> np.datetime64:
        return np.datetime64(self.exchange.days[self.exchange.day_index], "D")

    @property
    def minutes_done_today(self) -> int:
        return max(0, self.exchange.minute + 1)

    def minutes(self, symbol: str, index: int) -> MinuteBars:
        bars = self.daily(symbol)
        return _generated(
            symbol,
            str(bars.dates[index]),
            float(bars.open[index]),
            float(bars.high[index]),
            float(bars.low[index]),
            float(bars.close[index]),
            float(bars.volume[index]),
            self.exchange.config.seed,
        )

    def page(self, request: BarsRequest, page_size: int) -> dict[str, Any]:
        """One page of bars and the token of the next; at most min(limit, page_size) bars across the symbols."""
        size = min(request.limit, page_size)
        grouped: dict[str, list[dict[str, Any]]] = {}
        taken = 0
        last: tuple[str, int] | None = None
        more = False
        for symbol in request.symbols:
            if request.after is not None and symbol < request.after[0]:
                continue
            for bar in self._symbol_bars(symbol, request):
                if taken == size:
                    more = True
                    break
                grouped.setdefault(symbol, []).append(bar["json"])
                last = (symbol, bar["t"])
                taken += 1
            if more:
                break
        return {"bars": grouped, "next_page_token": encode_token(*last) if more and last else None}

    def _midnights(self, symbol: str) -> np.ndarray:
        """UNIX ns of midnight (New York) of each of the symbol's days: where its 1Day bars stand."""
        if symbol not in self._midnight:
            self._midnight[symbol] = np.array([midnight_ns(d) for d in self.daily(symbol).dates], dtype=np.int64)
        return self._midnight[symbol]

    def _symbol_bars(self, symbol: str, request: BarsRequest) -> Iterator[dict[str, Any]]:
        """The symbol's visible bars in [start, end] after the page token, in the walk's order."""
        bars = self.daily(symbol)
        visible = int(np.searchsorted(bars.dates, self.today, side="right"))
        if visible and bars.dates[visible - 1] == self.today and self.minutes_done_today == 0:
            visible -= 1  # before today's open: nothing of today yet
        midnights = self._midnights(symbol)[:visible]
        day_ns = 24 * 3600 * 1_000_000_000  # a day's bars all stand in [midnight, midnight + 24 h)
        start, end = request.start_ns, request.end_ns
        after = request.after[1] if request.after is not None and request.after[0] == symbol else None
        first = int(np.searchsorted(midnights + day_ns, start, side="right")) if start is not None else 0
        stop = int(np.searchsorted(midnights, end, side="right")) if end is not None else visible
        if after is not None and not request.descending:
            first = max(first, int(np.searchsorted(midnights + day_ns, after, side="right")))
        if after is not None and request.descending:
            stop = min(stop, int(np.searchsorted(midnights, after, side="left")))
        for index in range(stop - 1, first - 1, -1) if request.descending else range(first, stop):
            day_bars = self._day(symbol, index, bars.dates[index], request)
            for bar in reversed(day_bars) if request.descending else day_bars:
                t = bar["t"]
                if (start is not None and t < start) or (end is not None and t > end):
                    continue
                if after is not None and (t >= after if request.descending else t <= after):
                    continue
                yield bar

    def _day(self, symbol: str, index: int, date: np.datetime64, request: BarsRequest) -> list[dict[str, Any]]:
        """The bars of one day in ascending time, adjusted as of the replay day."""
        price, volume = (
            self.actions(symbol).factors(np.array([date]), self.today, request.kinds) if request.kinds else (None, None)
        )
        divisor = float(price[0]) if price is not None else 1.0
        multiplier = float(volume[0]) if volume is not None else 1.0
        completed = self.minutes_done_today if date == self.today else MINUTES_PER_SESSION
        if request.timeframe.daily and completed == MINUTES_PER_SESSION:
            bars = self.daily(symbol)
            record = {
                "o": float(bars.open[index]),
                "h": float(bars.high[index]),
                "l": float(bars.low[index]),
                "c": float(bars.close[index]),
                "v": float(bars.volume[index]),
            }
            return [bar_record(midnight_ns(date), record, None, None, divisor, multiplier)]
        minutes = self.minutes(symbol, index)
        size = request.timeframe.minutes or MINUTES_PER_SESSION * 4  # daily: one bucket for the whole session
        out: list[dict[str, Any]] = []
        bucket_of = [((SESSION_OPEN_MINUTE + m) // size) for m in range(completed)]
        m = 0
        while m < completed:
            bucket = bucket_of[m]
            end = m
            while end < completed and bucket_of[end] == bucket:
                end += 1
            out.append(aggregate(date, minutes, m, end, size, request.timeframe.daily, divisor, multiplier))
            m = end
        return out


def minute_n(volume: float) -> int:
    """The trade count of a generated minute: the data has none, so one trade per 100 shares (at least one)."""
    return max(1, int(volume // 100))


def minute_vwap(h: float, low: float, c: float) -> float:
    """The VWAP of a generated minute: the data has none, so the typical price (h + l + c) / 3."""
    return round((h + low + c) / 3, 4)


def bar_record(
    t: int, ohlcv: dict[str, float], n: int | None, vw: float | None, divisor: float, multiplier: float
) -> dict[str, Any]:
    """An Alpaca bar (t, o, h, l, c, v, n, vw), prices divided by `divisor`, volume times `multiplier`. A bar without
    its own trade count or VWAP (the real daily bar) gets them by the minutes' rules."""
    n = minute_n(ohlcv["v"]) if n is None else n
    vw = minute_vwap(ohlcv["h"], ohlcv["l"], ohlcv["c"]) if vw is None else vw

    def price(value: float) -> float:
        return value if divisor == 1.0 else round(value / divisor, 4)

    return {
        "t": t,
        "json": {
            "t": iso(t),
            "o": price(ohlcv["o"]),
            "h": price(ohlcv["h"]),
            "l": price(ohlcv["l"]),
            "c": price(ohlcv["c"]),
            "v": round(ohlcv["v"] * multiplier),
            "n": n,
            "vw": price(vw),
        },
    }


def aggregate(
    date: np.datetime64,
    minutes: MinuteBars,
    first: int,
    stop: int,
    size: int,
    daily: bool,
    divisor: float,
    multiplier: float,
) -> dict[str, Any]:
    """The bar of minutes [first, stop) of a day: a clock-aligned bucket of `size` minutes, or the day so far."""
    opens, highs, lows = minutes.open[first:stop], minutes.high[first:stop], minutes.low[first:stop]
    closes, volumes = minutes.close[first:stop], minutes.volume[first:stop]
    record = {
        "o": float(opens[0]),
        "h": float(highs.max()),
        "l": float(lows.min()),
        "c": float(closes[-1]),
        "v": float(volumes.sum()),
    }
    if daily:
        return bar_record(midnight_ns(date), record, None, None, divisor, multiplier)
    counts = [minute_n(float(v)) for v in volumes]
    vwaps = [minute_vwap(float(h), float(lo), float(c)) for h, lo, c in zip(highs, lows, closes, strict=True)]
    total = float(volumes.sum())
    vw = (
        round(sum(p * float(v) for p, v in zip(vwaps, volumes, strict=True)) / total, 4)
        if total > 0
        else float(np.mean(vwaps))
    )
    start = (SESSION_OPEN_MINUTE + first) // size * size
    return bar_record(minute_ns(date, start), record, sum(counts), vw, divisor, multiplier)
