"""Intraday minute bars and quotes GENERATED from real daily bars.

There are no real US-equity minute bars offline (docs/architecture.md section 6), so each real day's open/high/low/close
is turned into 390 regular-session minute bars by a seeded random path that starts at the open, touches the high and the
low exactly (at random minutes, in random order) and ends at the close, never leaving [low, high]. Volume follows the
usual U-shaped intraday profile and sums to the real day's volume. Everything generated says so (`generated=True`).
The same (seed, symbol, date) always gives the same bars.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

import numpy as np

MINUTES_PER_SESSION = 390  # 09:30 to 16:00 New York time
TICKS_PER_MINUTE = 4


@dataclass(frozen=True)
class MinuteBars:
    """One symbol's generated minute bars of one day; index i is the minute starting 09:30 + i."""

    symbol: str
    date: np.datetime64
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # whole shares
    generated: bool = True


def _rng(seed: int, symbol: str, date: np.datetime64) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|{symbol}|{date}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _bridge(rng: np.random.Generator, start: float, end: float, steps: int, scale: float) -> np.ndarray:
    """A Brownian bridge of `steps` increments from start to end (both included)."""
    if steps <= 0:
        return np.array([end])
    walk = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, scale, steps))])
    times = np.linspace(0.0, 1.0, steps + 1)
    return start + walk - times * walk[-1] + times * (end - start)


def generate_day(
    symbol: str,
    date: np.datetime64,
    day_open: float,
    day_high: float,
    day_low: float,
    day_close: float,
    day_volume: float,
    seed: int = 7,
) -> MinuteBars:
    if not (day_low <= min(day_open, day_close) and max(day_open, day_close) <= day_high):
        raise ValueError(f"{symbol} {date}: inconsistent daily bar o={day_open} h={day_high} l={day_low} c={day_close}")
    rng = _rng(seed, symbol, date)
    n = MINUTES_PER_SESSION * TICKS_PER_MINUTE
    # Ticks 0 and n-1 are the open and close; the extremes sit strictly inside.
    high_tick, low_tick = rng.choice(np.arange(2, n - 2), size=2, replace=False)
    anchors = sorted([(0, day_open), (int(high_tick), day_high), (int(low_tick), day_low), (n - 1, day_close)])
    scale = max(day_high - day_low, 1e-6) / np.sqrt(n) * 1.5
    path = np.empty(n)
    for (t0, p0), (t1, p1) in itertools.pairwise(anchors):
        path[t0 : t1 + 1] = _bridge(rng, p0, p1, t1 - t0, scale)
    path = np.clip(path, day_low, day_high)
    path[int(high_tick)], path[int(low_tick)] = day_high, day_low
    path[0], path[-1] = day_open, day_close
    ticks = path.reshape(MINUTES_PER_SESSION, TICKS_PER_MINUTE)
    opens = ticks[:, 0].copy()
    closes = ticks[:, -1].copy()
    highs = ticks.max(axis=1)
    lows = ticks.min(axis=1)
    # Prices on the penny, as the tape has them; the open, close and extremes stay the real day's exactly (a source
    # price with more decimals keeps them), so the day's minutes aggregate to its real daily bar.
    opens, highs, lows, closes = (np.round(a, 2) for a in (opens, highs, lows, closes))
    opens[0], closes[-1] = day_open, day_close
    highs[int(high_tick) // TICKS_PER_MINUTE], lows[int(low_tick) // TICKS_PER_MINUTE] = day_high, day_low
    opens, highs, lows, closes = (np.clip(a, day_low, day_high) for a in (opens, highs, lows, closes))
    highs = np.maximum.reduce([highs, opens, closes])
    lows = np.minimum.reduce([lows, opens, closes])
    minutes = np.arange(MINUTES_PER_SESSION)
    profile = 1.0 + 2.5 * np.exp(-minutes / 25.0) + 1.8 * np.exp(-(MINUTES_PER_SESSION - 1 - minutes) / 20.0)
    weights = profile * rng.gamma(4.0, 0.25, MINUTES_PER_SESSION)
    volume = np.floor(weights / weights.sum() * day_volume)
    volume[-1] += max(0.0, day_volume - volume.sum())
    return MinuteBars(symbol, date, opens, highs, lows, closes, volume)


def half_spread(price: float, spread_bps: float) -> float:
    """Half the quoted spread: spread_bps of the price, at least half a cent."""
    return max(0.005, price * spread_bps / 20_000.0)
