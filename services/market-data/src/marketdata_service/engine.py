"""Validation and normalisation of bars, and data-quality scores. Pure: no I/O.

A bar is rejected (with a reason code) when its timestamp does not move forward for its symbol (duplicate or
non-monotonic), its OHLC are inconsistent or not positive, or its return jumps beyond `max_jump_sigmas` EWMA
standard deviations of the symbol's recent returns, scaled by the square root of the bar intervals since the last
accepted bar (a price moves more over a night or a pause in the stream than over a minute: the open after a night
is not a jump, nor is each bar after a refused one once its move is explained by the time gone by). A level that
`confirm_jump_bars` bars in a row hold (each within the bound of the one before) is a new level: the bar that
completes the run is accepted, the ones before it stay refused. The quality score of a window is the share of bars
accepted.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from trading.marketdata.v1 import marketdata_pb2

from marketdata_service.history import BarHistory


@dataclass
class SymbolState:
    history: BarHistory
    last_ts: int = 0
    last_close: float = 0.0
    variance: float = 0.0
    observations: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    window_start: int = 0
    jump_run: int = 0  # bars in a row refused as jumps, each within the bound of the one before
    jump_ts: int = 0  # the last of them
    jump_close: float = 0.0


class BarValidator:
    def __init__(
        self,
        max_jump_sigmas: float = 12.0,
        window_bars: int = 30,
        history_bars: int = 2000,
        confirm_jump_bars: int = 3,
    ) -> None:
        if confirm_jump_bars < 2:
            raise ValueError("confirm_jump_bars must be at least 2 (a jump is confirmed by the bars after it)")
        self.max_jump_sigmas = max_jump_sigmas
        self.confirm_jump_bars = confirm_jump_bars
        self.window_bars = window_bars
        self.history_bars = history_bars
        self.symbols: dict[str, SymbolState] = {}

    def state(self, symbol: str) -> SymbolState:
        if symbol not in self.symbols:
            self.symbols[symbol] = SymbolState(BarHistory(symbol, self.history_bars))
        return self.symbols[symbol]

    def history(self, symbol: str) -> BarHistory | None:
        """The symbol's recent bars, None before its first bar (a read never claims a history)."""
        state = self.symbols.get(symbol)
        return state.history if state is not None else None

    def validate(self, bar: marketdata_pb2.Bar) -> tuple[str, str] | None:
        """None when the bar is good (and it is recorded), else (reason_code, reason)."""
        state = self.state(bar.symbol)
        problem = self._problem(bar, state)
        new_level = problem is not None and problem[0] == "price_jump" and self._confirms_a_new_level(bar, state)
        if problem is not None and not new_level:
            state.rejected[problem[0]] += 1
            return problem
        state.jump_run = 0
        if state.last_close > 0 and not new_level:  # a confirmed shift is not folded into the minute's variance
            change = math.log(bar.close / state.last_close)
            squared = change * change / self._intervals(bar, state.last_ts)  # a variance per bar interval
            state.variance = squared if state.observations == 0 else 0.94 * state.variance + 0.06 * squared
            state.observations += 1
        state.last_ts, state.last_close = bar.envelope.ts_event, bar.close
        state.accepted += 1
        state.window_start = state.window_start or bar.envelope.ts_event
        state.history.append(bar)
        return None

    def _problem(self, bar: marketdata_pb2.Bar, state: SymbolState) -> tuple[str, str] | None:
        ts = bar.envelope.ts_event
        if state.last_ts and ts == state.last_ts:
            return "duplicate", f"{bar.symbol} bar at {ts} was already received"
        if state.last_ts and ts < state.last_ts:
            return "non_monotonic_ts", f"{bar.symbol} bar at {ts} is older than the last one at {state.last_ts}"
        prices = (bar.open, bar.high, bar.low, bar.close)
        if not all(math.isfinite(p) and p > 0 for p in prices) or bar.volume < 0:
            return "invalid_values", f"{bar.symbol}: prices must be positive and volume not negative"
        if not (bar.low <= min(bar.open, bar.close) and max(bar.open, bar.close) <= bar.high):
            return "ohlc_inconsistent", f"{bar.symbol}: o={bar.open} h={bar.high} l={bar.low} c={bar.close}"
        if state.observations >= 10 and state.last_close > 0:
            sigma = math.sqrt(state.variance * self._intervals(bar, state.last_ts))
            change = abs(math.log(bar.close / state.last_close))
            if sigma > 0 and change > self.max_jump_sigmas * sigma and change > 0.01:
                return "price_jump", f"{bar.symbol}: return {change:.4f} is {change / sigma:.1f} sigmas"
        return None

    def _confirms_a_new_level(self, bar: marketdata_pb2.Bar, state: SymbolState) -> bool:
        """A bar refused as a jump: counted in the run of such bars if it holds the level of the one before (within
        the bound from it); the bar that makes the run `confirm_jump_bars` long is a new level, and accepted."""
        ts = bar.envelope.ts_event
        holds = False
        if state.jump_run:
            sigma = math.sqrt(state.variance * self._intervals(bar, state.jump_ts))
            holds = abs(math.log(bar.close / state.jump_close)) <= max(self.max_jump_sigmas * sigma, 0.01)
        state.jump_run = state.jump_run + 1 if holds else 1
        state.jump_ts, state.jump_close = ts, bar.close
        return state.jump_run >= self.confirm_jump_bars

    @staticmethod
    def _intervals(bar: marketdata_pb2.Bar, since_ns: int) -> float:
        """Bar intervals from since_ns to this bar (at least 1)."""
        interval_ns = (bar.interval_seconds or 60) * 1_000_000_000
        return max(1.0, (bar.envelope.ts_event - since_ns) / interval_ns)

    def quality(self, symbol: str, now_ns: int, stale: bool) -> marketdata_pb2.DataQualityScored | None:
        """A score when the symbol's window is full (or it went stale), else None; starts the next window."""
        state = self.state(symbol)
        total = state.accepted + sum(state.rejected.values())
        if total < self.window_bars and not (stale and total):
            return None
        score = marketdata_pb2.DataQualityScored(
            symbol=symbol,
            window_start=state.window_start,
            window_end=now_ns,
            score=0.0 if stale else state.accepted / total,
            records_accepted=state.accepted,
            records_rejected=sum(state.rejected.values()),
            rejects_by_reason=dict(state.rejected),
            stale=stale,
        )
        state.accepted, state.rejected, state.window_start = 0, Counter(), 0
        return score


def quote_problem(quote: marketdata_pb2.Quote) -> tuple[str, str] | None:
    """A crossed, empty or non-positive quote is rejected."""
    if not (quote.bid_price > 0 and quote.ask_price > 0 and quote.bid_size >= 0 and quote.ask_size >= 0):
        return "invalid_values", f"{quote.symbol}: quote prices must be positive"
    if quote.bid_price > quote.ask_price:
        return "crossed_quote", f"{quote.symbol}: bid {quote.bid_price} above ask {quote.ask_price}"
    return None
