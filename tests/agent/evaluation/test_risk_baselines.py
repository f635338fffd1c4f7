"""The minimum-variance and risk-parity baselines: what they solve for, and fitted on past closes only."""

from __future__ import annotations

import numpy as np
from trading_agent.evaluation.backtest import (
    COVARIANCE_DAYS,
    baselines,
    minimum_variance_weights,
    risk_based,
    risk_parity_weights,
    trailing_covariance,
)
from trading_datasets import close_panel

SYMBOLS = ["AAPL", "JNJ", "KO", "XOM", "JPM", "MSFT", "PG", "GE"]


def _panel() -> np.ndarray:
    return close_panel(SYMBOLS, "skfolio", "2005-01-01", "2008-12-31")[1]


def test_minimum_variance_is_long_only_and_beats_every_sampled_portfolio():
    covariance = trailing_covariance(_panel()[:600])
    weights = minimum_variance_weights(covariance)
    assert (weights >= 0).all() and abs(weights.sum() - 1.0) < 1e-12
    best = weights @ covariance @ weights
    samples = np.random.default_rng(0).dirichlet(np.ones(len(SYMBOLS)), size=2000)
    assert best <= np.einsum("ij,jk,ik->i", samples, covariance, samples).min() + 1e-12
    equal = np.full(len(SYMBOLS), 1 / len(SYMBOLS))
    assert best < equal @ covariance @ equal


def test_risk_parity_equalises_risk_contributions():
    covariance = trailing_covariance(_panel()[:600])
    weights = risk_parity_weights(covariance)
    assert (weights > 0).all() and abs(weights.sum() - 1.0) < 1e-12
    contributions = weights * (covariance @ weights)
    np.testing.assert_allclose(contributions / contributions.sum(), 1 / len(SYMBOLS), atol=1e-6)
    assert not np.allclose(weights, 1 / len(SYMBOLS), atol=1e-3)  # different volatilities: not equal weights


def test_risk_baselines_use_the_past_year_only():
    closes = _panel()
    t = 700
    moved = closes.copy()
    moved[t + 1 :] *= np.random.default_rng(2).uniform(0.5, 1.5, size=moved[t + 1 :].shape)
    moved[: t - COVARIANCE_DAYS - 1] *= 3.0  # older than a year: ignored too
    for name in ("minimum_variance", "risk_parity"):
        strategy = baselines()[name]
        np.testing.assert_allclose(strategy(closes[: t + 1], np.zeros(len(SYMBOLS))),
                                   strategy(moved[: t + 1], np.zeros(len(SYMBOLS))), atol=1e-9)  # fmt: skip
    early = risk_based(minimum_variance_weights)(closes[:100], np.zeros(len(SYMBOLS)))
    np.testing.assert_allclose(early, 1 / len(SYMBOLS))  # less than a year of history: equal weights
    held = np.full(len(SYMBOLS), 0.1)
    assert risk_based(minimum_variance_weights)(closes[:301], held) is held  # between rebalances: hold
