"""The backtest engine: exact accounting on a hand-made panel, costs, no look-ahead, the baselines' rules."""

from __future__ import annotations

import numpy as np
import pytest
from trading_agent.evaluation import (
    CostModel,
    baselines,
    buy_and_hold,
    equal_weight,
    momentum,
    moving_average_crossover,
    run_backtest,
)

FREE = CostModel(0.0, 0.0, 0.0)


def panel(days: int = 400, symbols: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, (days, symbols)), axis=0))
    return np.arange(days).astype("datetime64[D]"), closes


def test_buy_and_hold_equals_the_price_path() -> None:
    dates, closes = panel()
    result = run_backtest(dates, closes, buy_and_hold(), 1, len(closes), FREE)
    expected = (closes[-1] / closes[0]).mean()  # equal money in each symbol on day 0, never traded again
    assert np.prod(1 + result.returns) == pytest.approx(expected)
    assert result.turnover[0] == pytest.approx(1.0) and np.allclose(result.turnover[1:], 0.0, atol=1e-12)


def test_costs_are_charged_on_traded_notional() -> None:
    dates, closes = panel()
    costs = CostModel(1.0, 2.0, 3.0)
    free = run_backtest(dates, closes, equal_weight(1), 1, 100, FREE)
    paid = run_backtest(dates, closes, equal_weight(1), 1, 100, costs)
    assert np.allclose(paid.costs, paid.turnover * 6e-4)
    assert np.allclose(free.returns - paid.returns, paid.costs)
    assert paid.costs[0] == pytest.approx(6e-4)  # buying 100% of equity on the first day


def test_no_look_ahead_perturbing_the_future_changes_nothing_before_it() -> None:
    dates, closes = panel(500)
    cut = 350
    future = closes.copy()
    future[cut + 1 :] *= np.random.default_rng(9).uniform(0.5, 2.0, future[cut + 1 :].shape)
    for name, strategy in baselines().items():
        a = run_backtest(dates, closes, strategy, 260, 500, FREE)
        b = run_backtest(dates, future, strategy, 260, 500, FREE)
        # returns up to day `cut` and the weights decided at the close of `cut` are the same
        assert np.array_equal(a.returns[: cut - 260 + 1], b.returns[: cut - 260 + 1]), name
        assert np.array_equal(a.weights[: cut - 260 + 2], b.weights[: cut - 260 + 2]), name


def test_a_cheating_strategy_would_be_caught_the_engine_hands_only_the_past() -> None:
    dates, closes = panel(50)
    seen = []

    def spy(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        seen.append(len(history))
        with pytest.raises(ValueError):
            history[0, 0] = 1.0  # read-only: a strategy cannot alter the data either
        return np.zeros(history.shape[1])

    run_backtest(dates, closes, spy, 10, 50, FREE)
    assert seen == list(range(10, 50))


def test_invalid_weights_are_rejected_with_a_reason() -> None:
    dates, closes = panel(50)
    with pytest.raises(ValueError, match="no leverage"):
        run_backtest(dates, closes, lambda h, w: np.full(3, 0.5), 1, 10, FREE)
    with pytest.raises(ValueError, match="finite weights"):
        run_backtest(dates, closes, lambda h, w: np.array([np.nan, 0, 0]), 1, 10, FREE)


def test_momentum_holds_the_top_third_by_12_1_return() -> None:
    days = 300
    closes = np.ones((days, 3)) * 100
    closes[:, 0] *= np.linspace(1, 2, days)  # best 12-1 return
    closes[:, 1] *= np.linspace(1, 0.5, days)
    target = momentum()(closes, np.zeros(3))
    assert np.array_equal(target, [1.0, 0.0, 0.0])
    assert np.array_equal(momentum()(closes[:200], np.zeros(3)), np.zeros(3))  # under a year of history: cash


def test_moving_average_crossover() -> None:
    closes = np.column_stack([np.linspace(50, 100, 250), np.linspace(100, 50, 250)])
    assert np.allclose(moving_average_crossover()(closes, np.zeros(2)), [0.5, 0.0])
