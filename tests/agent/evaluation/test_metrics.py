"""Metrics against closed-form and hand-computed cases, plus properties that must hold for any series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from trading_agent.evaluation import metrics

daily = arrays(np.float64, st.integers(2, 300), elements=st.floats(-0.2, 0.2, allow_nan=False))


def test_hand_computed_series() -> None:
    r = np.array([0.10, -0.20, 0.05, 0.10])
    # equity 1.1, 0.88, 0.924, 1.0164
    assert metrics.total_return(r) == pytest.approx(0.0164)
    assert metrics.max_drawdown(r) == pytest.approx(0.2)  # 1.1 -> 0.88
    assert metrics.max_drawdown_duration(r) == 3  # under the 1.1 peak on days 2, 3, 4
    assert metrics.annualised_return(r) == pytest.approx(1.0164 ** (252 / 4) - 1)
    mean, std = r.mean(), r.std(ddof=1)
    assert metrics.sharpe(r) == pytest.approx(mean / std * math.sqrt(252))
    assert metrics.sortino(r) == pytest.approx(mean / math.sqrt(0.04 / 4) * math.sqrt(252))
    assert metrics.calmar(r) == pytest.approx(metrics.annualised_return(r) / 0.2)


def test_var_and_cvar_on_uniform_grid() -> None:
    r = np.arange(-50, 50) / 1000.0  # 100 days: -5.0% .. +4.9%
    assert metrics.value_at_risk(r, 0.95) == pytest.approx(0.046)  # 5th smallest
    assert metrics.conditional_value_at_risk(r, 0.95) == pytest.approx(np.mean([0.05, 0.049, 0.048, 0.047, 0.046]))
    assert metrics.value_at_risk(r, 0.99) == pytest.approx(0.05)


def test_turnover_and_cost_drag() -> None:
    assert metrics.annual_turnover(np.array([0.0, 1.0])) == pytest.approx(126.0)
    assert metrics.annual_cost_drag(np.full(10, 1e-4)) == pytest.approx(0.0252)


def test_deflated_sharpe_closed_form() -> None:
    # one trial: the deflated Sharpe is the probabilistic Sharpe against 0
    rng = np.random.default_rng(1)
    r = rng.normal(0.001, 0.01, 1000)
    assert metrics.deflated_sharpe_ratio(r, 1) == pytest.approx(metrics.probabilistic_sharpe_ratio(r))
    # expected max of N standard normals (variance 1), the Bailey & Lopez de Prado approximation, N=1000: ~3.25
    assert metrics.expected_max_sharpe(1.0, 1000) == pytest.approx(3.2552, abs=1e-3)
    # more trials, lower confidence
    assert (
        metrics.deflated_sharpe_ratio(r, 100)
        < metrics.deflated_sharpe_ratio(r, 10)
        < metrics.deflated_sharpe_ratio(r, 1)
    )


def test_probabilistic_sharpe_normal_case() -> None:
    # symmetric two-point series: skew 0, kurtosis 1, so PSR = Phi(SR * sqrt(T-1) / sqrt(1 + 0 * SR^2))... computed here
    r = np.tile([0.02, -0.01], 50)
    sr = metrics.sharpe_per_period(r)
    expected = 0.5 * (1 + math.erf(sr * math.sqrt(99) / math.sqrt(1 + (1 - 1) / 4 * sr**2) / math.sqrt(2)))
    assert metrics.skewness(r) == pytest.approx(0.0, abs=1e-9)
    assert metrics.kurtosis(r) == pytest.approx(1.0)
    assert metrics.probabilistic_sharpe_ratio(r) == pytest.approx(expected)


def test_sharpe_difference_interval() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(0.002, 0.01, 750)
    same = metrics.sharpe_difference_interval(a, a, resamples=200)
    assert same.difference == 0 and same.lower == 0 and same.upper == 0
    worse = a - 0.003  # the same days, 3 bp a day less
    result = metrics.sharpe_difference_interval(a, worse, resamples=300, seed=5)
    assert result.lower > 0 and result.lower <= result.difference <= result.upper
    assert result == metrics.sharpe_difference_interval(a, worse, resamples=300, seed=5)  # seeded: reproducible
    with pytest.raises(ValueError, match="same days"):
        metrics.sharpe_difference_interval(a, a[:-1])


def test_stationary_bootstrap_keeps_blocks() -> None:
    index = metrics.stationary_bootstrap_indices(10_000, 50.0, np.random.default_rng(0))
    continued = np.mean(index[1:] == (index[:-1] + 1) % 10_000)
    assert continued == pytest.approx(1 - 1 / 50, abs=0.01)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        metrics.sharpe(np.array([]))
    with pytest.raises(ValueError, match="finite"):
        metrics.total_return(np.array([0.1, np.nan]))


@settings(max_examples=60, deadline=None)
@given(daily)
def test_properties(r: np.ndarray) -> None:
    assert 0.0 <= metrics.max_drawdown(r) <= 1.0  # a total loss only rounds to 1
    assert metrics.max_drawdown_duration(r) <= len(r)
    assert metrics.conditional_value_at_risk(r, 0.95) >= metrics.value_at_risk(r, 0.95) - 1e-12
    assert metrics.value_at_risk(r, 0.99) >= metrics.value_at_risk(r, 0.95) - 1e-12
    assert metrics.total_return(r) == pytest.approx(metrics.equity_curve(r)[-1] - 1)
    # Sharpe is scale-free: halving the exposure leaves it unchanged
    assert metrics.sharpe(r * 0.5) == pytest.approx(metrics.sharpe(r), abs=1e-9)
    if np.all(r >= 0):
        assert metrics.max_drawdown(r) == 0.0
