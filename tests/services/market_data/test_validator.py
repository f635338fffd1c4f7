"""Bar validation: every reject reason, and the quality score of a window."""

from __future__ import annotations

import pytest
from marketdata_service.engine import BarValidator, quote_problem
from marketdata_service.history import BarHistory
from trading.marketdata.v1 import marketdata_pb2
from trading_platform.envelope import new_envelope

MINUTE = 60_000_000_000


def bar(
    minute: int, close: float, high: float | None = None, low: float | None = None, symbol: str = "AAPL"
) -> marketdata_pb2.Bar:
    return marketdata_pb2.Bar(
        envelope=new_envelope("test", ts_event=minute * MINUTE),
        symbol=symbol,
        open=close,
        high=high if high is not None else close + 0.1,
        low=low if low is not None else close - 0.1,
        close=close,
        volume=100,
    )


def test_rejects_with_reason_codes_and_scores_the_window() -> None:
    validator = BarValidator(max_jump_sigmas=6, window_bars=20)
    for minute in range(1, 16):
        assert validator.validate(bar(minute, 100 + 0.05 * (minute % 3))) is None
    assert validator.validate(bar(15, 100.0))[0] == "duplicate"  # type: ignore[index]
    assert validator.validate(bar(14, 100.0))[0] == "non_monotonic_ts"  # type: ignore[index]
    assert validator.validate(bar(16, 100.0, high=99.0))[0] == "ohlc_inconsistent"  # type: ignore[index]
    assert validator.validate(bar(17, 130.0))[0] == "price_jump"  # type: ignore[index]
    assert validator.validate(bar(18, -1.0))[0] == "invalid_values"  # type: ignore[index]
    score = validator.quality("AAPL", 20 * MINUTE, stale=False)
    assert score is not None
    assert score.records_accepted == 15 and score.records_rejected == 5
    assert score.score == 0.75
    assert dict(score.rejects_by_reason) == {
        "duplicate": 1,
        "non_monotonic_ts": 1,
        "ohlc_inconsistent": 1,
        "price_jump": 1,
        "invalid_values": 1,
    }
    assert validator.quality("AAPL", 21 * MINUTE, stale=False) is None  # a new window started


def test_the_jump_bound_widens_with_the_time_since_the_last_bar() -> None:
    """A night (or a stream pause) explains a move a minute does not: 2 % at the next open is not a jump, 2 % the
    next minute is; and a refused bar does not pin the symbol to the old level for good."""
    validator = BarValidator(max_jump_sigmas=12)
    for minute in range(1, 31):
        assert validator.validate(bar(minute, 100 + 0.02 * (minute % 2))) is None
    assert validator.validate(bar(31, 102.0))[0] == "price_jump"  # type: ignore[index]
    assert validator.validate(bar(30 + 1050, 102.0)) is None  # 17.5 hours on: the overnight gap
    assert validator.validate(bar(30 + 1051, 104.1))[0] == "price_jump"  # type: ignore[index]
    # the level moved: the refused bars' move is accepted once the time since the last good bar explains it
    outcomes = [validator.validate(bar(30 + 1051 + k, 104.1)) for k in range(1, 2000)]
    assert any(outcome is None for outcome in outcomes)


def test_a_level_that_three_bars_in_a_row_hold_is_a_new_level_and_a_lone_spike_is_not() -> None:
    validator = BarValidator(max_jump_sigmas=12, confirm_jump_bars=3)
    for minute in range(1, 31):
        assert validator.validate(bar(minute, 100 + 0.02 * (minute % 2))) is None
    assert validator.validate(bar(31, 130.0))[0] == "price_jump"  # type: ignore[index]  # a lone spike
    assert validator.validate(bar(32, 100.02)) is None  # back: the spike stays refused
    outcomes = [validator.validate(bar(minute, 130.0 + 0.01 * (minute % 2))) for minute in (33, 34, 35, 36)]
    assert [o[0] if o else None for o in outcomes] == ["price_jump", "price_jump", None, None]  # the third confirms
    state = validator.state("AAPL")
    assert state.last_close == 130.0 and state.variance < 1e-6  # the shift is not folded into the variance
    # alternating between two levels never confirms either
    alternating = [validator.validate(bar(36 + k, 160.0 if k % 2 else 130.0)) for k in range(1, 9)]
    assert [o is None for o in alternating] == [False, True] * 4
    with pytest.raises(ValueError, match="confirm_jump_bars"):
        BarValidator(confirm_jump_bars=1)


def test_a_stale_symbol_scores_zero() -> None:
    validator = BarValidator(window_bars=100)
    validator.validate(bar(1, 50.0, symbol="MSFT"))
    score = validator.quality("MSFT", 10 * MINUTE, stale=True)
    assert score is not None and score.stale and score.score == 0.0


def test_crossed_and_invalid_quotes_are_rejected() -> None:
    good = marketdata_pb2.Quote(symbol="AAPL", bid_price=99.99, ask_price=100.01, bid_size=1, ask_size=1)
    assert quote_problem(good) is None
    crossed = marketdata_pb2.Quote(symbol="AAPL", bid_price=100.02, ask_price=100.01, bid_size=1, ask_size=1)
    assert quote_problem(crossed)[0] == "crossed_quote"  # type: ignore[index]
    assert quote_problem(marketdata_pb2.Quote(symbol="AAPL"))[0] == "invalid_values"  # type: ignore[index]


def test_the_history_returns_the_bars_it_was_given_within_its_capacity() -> None:
    history = BarHistory("AAPL", capacity=5)
    assert history.latest() is None and history.between(0) == []
    bars = [bar(minute, 100.0 + minute) for minute in range(1, 9)]
    bars[3].vwap, bars[3].trade_count, bars[3].source, bars[3].generated = 103.5, 7, 2, True
    for item in bars:
        history.append(item)
    assert len(history) == 5
    assert history.between(0) == bars[3:]  # the oldest went first; each read back equal to what was stored
    assert history.latest() == bars[-1]
    assert history.between(5 * MINUTE, 7 * MINUTE) == bars[4:6]
    assert history.between(0, limit=2) == bars[-2:]
    with pytest.raises(ValueError, match="cannot hold a bar of MSFT"):
        history.append(bar(9, 1.0, symbol="MSFT"))
    caused = bar(9, 1.0)
    caused.envelope.causation_id = "someone-else"
    with pytest.raises(ValueError, match="a new chain each"):
        history.append(caused)
    assert len(history) == 5


def test_a_history_is_claimed_in_full_at_its_first_bar() -> None:
    validator = BarValidator(history_bars=2000)
    assert validator.history("AAPL") is None  # a read claims nothing
    validator.validate(bar(1, 100.0))
    history = validator.history("AAPL")
    assert history is not None and history.rows.nbytes == 2000 * history.rows.itemsize
    assert history.rows.itemsize <= 128
