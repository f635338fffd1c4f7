"""The daily backtest engine, its cost model and the baseline strategies.

A strategy is a function `(history, current_weights) -> target_weights`: `history` is the read-only close panel
up to and including day t (rows = days, columns = symbols) and the target weights are held from the close of t to
the close of t+1. The engine only ever hands a strategy closes up to t, so a strategy cannot see the future
(tests/agent/evaluation perturbs the future and checks nothing before it changes).

COST MODEL: trading_agent has no training environment yet, so the cost model lives here; the environment must import
`CostModel` from this module rather than define a second one, so training and evaluation charge the same costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from trading_features import WARMUP_BARS, compute_batch
from trading_policy import BaselinePolicy

Strategy = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CostModel:
    """Costs in basis points of the traded notional: broker commission, half the bid-ask spread (we cross it) and
    slippage (market impact and delay). A day's cost = sum(|target - drifted weights|) * total_bps / 10,000."""

    commission_bps: float = 0.5
    half_spread_bps: float = 2.0
    slippage_bps: float = 3.0

    @property
    def total_bps(self) -> float:
        return self.commission_bps + self.half_spread_bps + self.slippage_bps

    def cost(self, traded_fraction: float) -> float:
        return traded_fraction * self.total_bps / 10_000.0


@dataclass(frozen=True)
class BacktestResult:
    """Per evaluated day d: returns[d] is the net return earned over day d (from the close before to the close of d),
    weights[d] the weights held over it, turnover[d] and costs[d] what was traded at the close before to get them."""

    dates: np.ndarray
    returns: np.ndarray
    weights: np.ndarray
    turnover: np.ndarray
    costs: np.ndarray


def check_weights(target: np.ndarray, symbols: int) -> np.ndarray:
    weights = np.asarray(target, dtype=np.float64)
    if weights.shape != (symbols,) or not np.all(np.isfinite(weights)):
        raise ValueError(f"a strategy must return {symbols} finite weights, got {target!r}")
    if np.any(weights < -1e-12) or weights.sum() > 1.0 + 1e-9:
        raise ValueError(f"weights must be long-only and sum to at most 1 (no leverage), got {weights}")
    return np.clip(weights, 0.0, None)


def run_backtest(
    dates: np.ndarray, closes: np.ndarray, strategy: Strategy, start: int, end: int, costs: CostModel
) -> BacktestResult:
    """Trade `strategy` from the close of day start-1 to the close of day end-1 (days [start, end) are evaluated).
    Days before `start` are history the strategy may look at (warm-up, the training window)."""
    if not 1 <= start < end <= len(closes):
        raise ValueError(f"need 1 <= start < end <= {len(closes)}, got start={start} end={end}")
    symbols = closes.shape[1]
    frozen = closes.copy()
    frozen.flags.writeable = False
    days = end - start
    returns, turnover, paid = np.empty(days), np.empty(days), np.empty(days)
    held = np.empty((days, symbols))
    weights = np.zeros(symbols)
    for d, t in enumerate(range(start - 1, end - 1)):
        target = check_weights(strategy(frozen[: t + 1], weights.copy()), symbols)
        traded = float(np.abs(target - weights).sum())
        asset_returns = closes[t + 1] / closes[t] - 1.0
        gross = float(target @ asset_returns)
        cost = costs.cost(traded)
        returns[d], turnover[d], paid[d], held[d] = gross - cost, traded, cost, target
        # the weights drift with prices until the next decision; cash earns nothing
        grown = target * (1.0 + asset_returns)
        weights = grown / (1.0 + gross)
    return BacktestResult(dates[start:end], returns, held, turnover, paid)


def buy_and_hold() -> Strategy:
    """Equal weights bought on the first day, then held as they drift (never rebalanced)."""

    def strategy(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return weights if weights.sum() > 0 else np.full(history.shape[1], 1.0 / history.shape[1])

    return strategy


def equal_weight(rebalance_days: int = 21) -> Strategy:
    """Equal weights, rebalanced back to 1/N every `rebalance_days` trading days (monthly by default)."""

    def strategy(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if weights.sum() > 0 and len(history) % rebalance_days:
            return weights
        return np.full(history.shape[1], 1.0 / history.shape[1])

    return strategy


def momentum(lookback: int = 252, skip: int = 21, top_fraction: float = 1 / 3, rebalance_days: int = 21) -> Strategy:
    """12-1 cross-sectional momentum: every month, hold equal weights in the top third of symbols by their return from
    12 months ago to 1 month ago (the last month is skipped: it tends to reverse). Cash before 12 months of history."""

    def strategy(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if len(history) <= lookback:
            return np.zeros(history.shape[1])
        if weights.sum() > 0 and len(history) % rebalance_days:
            return weights
        past = history[-1 - skip] / history[-1 - lookback] - 1.0
        count = max(1, round(len(past) * top_fraction))
        chosen = np.argsort(-past, kind="stable")[:count]
        target = np.zeros(history.shape[1])
        target[chosen] = 1.0 / count
        return target

    return strategy


def moving_average_crossover(fast: int = 50, slow: int = 200) -> Strategy:
    """Per symbol, hold 1/N when its 50-day average close is above its 200-day average, cash otherwise."""

    def strategy(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if len(history) < slow:
            return np.zeros(history.shape[1])
        above = history[-fast:].mean(axis=0) > history[-slow:].mean(axis=0)
        return above / history.shape[1]

    return strategy


COVARIANCE_DAYS = 252
COVARIANCE_SHRINKAGE = 0.5
"""Covariance of the risk-based baselines: the sample covariance of the last 252 daily simple returns, shrunk half
way to its diagonal (a 20 x 20 covariance from one year of data is noisy; the shrinkage keeps it well conditioned)."""


def trailing_covariance(history: np.ndarray, days: int = COVARIANCE_DAYS) -> np.ndarray:
    """Shrunk covariance of the daily simple returns over the last `days` days of `history` (past closes only)."""
    returns = history[-days - 1 :][1:] / history[-days - 1 :][:-1] - 1.0
    sample = np.cov(returns, rowvar=False)
    return (1.0 - COVARIANCE_SHRINKAGE) * sample + COVARIANCE_SHRINKAGE * np.diag(np.diag(sample))


def minimum_variance_weights(covariance: np.ndarray) -> np.ndarray:
    """Long-only, fully invested weights of least variance w' C w (SLSQP from equal weights)."""
    from scipy.optimize import minimize

    count = len(covariance)
    scale = float(np.mean(np.diag(covariance)))
    c = covariance / scale
    solution = minimize(
        lambda w: w @ c @ w,
        np.full(count, 1.0 / count),
        jac=lambda w: 2.0 * c @ w,
        bounds=[(0.0, 1.0)] * count,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 200},
    )
    weights = np.clip(solution.x, 0.0, None)
    return weights / weights.sum()


def risk_parity_weights(covariance: np.ndarray) -> np.ndarray:
    """Long-only, fully invested weights whose risk contributions w_i (C w)_i are equal: the minimum of
    w' C w / 2 - sum(log w) / N (Spinu's convex form), rescaled to sum 1."""
    from scipy.optimize import minimize

    count = len(covariance)
    c = covariance / float(np.mean(np.diag(covariance)))
    budget = 1.0 / count
    solution = minimize(
        lambda w: 0.5 * w @ c @ w - budget * np.log(w).sum(),
        np.full(count, 1.0 / count) / np.sqrt(np.mean(c)),
        jac=lambda w: c @ w - budget / w,
        bounds=[(1e-10, None)] * count,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 1000},
    )
    return solution.x / solution.x.sum()


def risk_based(weights_of: Callable[[np.ndarray], np.ndarray], rebalance_days: int = 21) -> Strategy:
    """Every `rebalance_days`, the weights `weights_of(trailing covariance)` fitted on the past year of closes only;
    equal weights before a year of history."""

    def strategy(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if weights.sum() > 0 and len(history) % rebalance_days:
            return weights
        if len(history) <= COVARIANCE_DAYS:
            return np.full(history.shape[1], 1.0 / history.shape[1])
        return weights_of(trailing_covariance(history))

    return strategy


def feature_policy(predict: Callable[[np.ndarray], float]) -> Strategy:
    """Any per-symbol policy on trading_features (like trading_policy's BaselinePolicy, the rule the signal service
    serves): weight_i = predict(features_i), scaled down to sum 1 if the weights add up to more."""

    def strategy(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if len(history) < WARMUP_BARS:
            return np.zeros(history.shape[1])
        window = history[-WARMUP_BARS:]
        target = np.array([max(0.0, predict(compute_batch(window[:, i])[-1])) for i in range(history.shape[1])])
        total = target.sum()
        return target / total if total > 1.0 else target

    return strategy


def baselines() -> dict[str, Strategy]:
    """The yardsticks every candidate is evaluated against, on the same days and costs."""
    return {
        "buy_and_hold": buy_and_hold(),
        "equal_weight_monthly": equal_weight(),
        "momentum_12_1": momentum(),
        "ma_crossover_50_200": moving_average_crossover(),
        "minimum_variance": risk_based(minimum_variance_weights),
        "risk_parity": risk_based(risk_parity_weights),
        "signal_baseline_policy": feature_policy(BaselinePolicy().predict),
    }
