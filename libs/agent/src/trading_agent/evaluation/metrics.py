"""Performance metrics of a daily return series, pure numpy: returns, risk, drawdowns, tail risk, turnover and cost
drag, a stationary-bootstrap confidence interval for a Sharpe difference, and the deflated Sharpe ratio.

Conventions (docs/evaluation.md repeats them): returns are simple daily net returns; 252 trading days a year; the
risk-free rate is zero; Sharpe and Sortino are annualised with sqrt(252) unless a function says "per period".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

TRADING_DAYS = 252
EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def _returns(returns: np.ndarray) -> np.ndarray:
    values = np.asarray(returns, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("returns must be a non-empty 1-D series")
    if not np.all(np.isfinite(values)) or np.any(values <= -1.0):
        raise ValueError("returns must be finite and greater than -100%")
    return values


def total_return(returns: np.ndarray) -> float:
    return float(np.prod(1.0 + _returns(returns)) - 1.0)


def annualised_return(returns: np.ndarray) -> float:
    values = _returns(returns)
    return float((1.0 + total_return(values)) ** (TRADING_DAYS / len(values)) - 1.0)


def volatility(returns: np.ndarray) -> float:
    values = _returns(returns)
    return float(values.std(ddof=1) * math.sqrt(TRADING_DAYS)) if len(values) > 1 else 0.0


def sharpe_per_period(returns: np.ndarray) -> float:
    """Mean over sample standard deviation of the per-period returns (0 when they do not vary)."""
    values = _returns(returns)
    if len(values) < 2:
        return 0.0
    deviation = values.std(ddof=1)
    return float(values.mean() / deviation) if deviation > 1e-12 else 0.0


def sharpe(returns: np.ndarray) -> float:
    return sharpe_per_period(returns) * math.sqrt(TRADING_DAYS)


def sortino(returns: np.ndarray) -> float:
    """Annualised mean over downside deviation sqrt(mean(min(r, 0)^2)) (target return 0)."""
    values = _returns(returns)
    downside = math.sqrt(float(np.mean(np.minimum(values, 0.0) ** 2)))
    return float(values.mean() / downside * math.sqrt(TRADING_DAYS)) if downside > 1e-12 else 0.0


def equity_curve(returns: np.ndarray) -> np.ndarray:
    return np.cumprod(1.0 + _returns(returns))


def drawdowns(returns: np.ndarray) -> np.ndarray:
    """Drawdown after each day, as a fraction (<= 0) of the running peak; the start (equity 1) counts as a peak."""
    equity = equity_curve(returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return equity / peak - 1.0


def max_drawdown(returns: np.ndarray) -> float:
    return float(-drawdowns(returns).min())


def max_drawdown_duration(returns: np.ndarray) -> int:
    """Longest run of consecutive days spent below the previous peak."""
    longest = current = 0
    for under in drawdowns(returns) < -1e-15:
        current = current + 1 if under else 0
        longest = max(longest, current)
    return longest


def calmar(returns: np.ndarray) -> float:
    depth = max_drawdown(returns)
    return annualised_return(returns) / depth if depth > 1e-15 else 0.0


def value_at_risk(returns: np.ndarray, level: float = 0.95) -> float:
    """Historical one-day VaR: the loss (positive number) not exceeded on `level` of the days."""
    return float(-np.quantile(_returns(returns), 1.0 - level, method="lower"))


def conditional_value_at_risk(returns: np.ndarray, level: float = 0.95) -> float:
    """Historical one-day CVaR (expected shortfall): mean loss on the days at or beyond the VaR."""
    values = _returns(returns)
    threshold = np.quantile(values, 1.0 - level, method="lower")
    return float(-values[values <= threshold].mean())


def annual_turnover(turnover: np.ndarray) -> float:
    """Mean daily traded fraction of equity (sum of |weight changes|), times 252."""
    return float(np.mean(turnover) * TRADING_DAYS) if len(turnover) else 0.0


def annual_cost_drag(costs: np.ndarray) -> float:
    """Mean daily cost as a fraction of equity, times 252: what trading costs take from the annual return."""
    return float(np.mean(costs) * TRADING_DAYS) if len(costs) else 0.0


def skewness(returns: np.ndarray) -> float:
    values = _returns(returns)
    deviation = values.std()
    return float(np.mean((values - values.mean()) ** 3) / deviation**3) if deviation > 1e-12 else 0.0


def kurtosis(returns: np.ndarray) -> float:
    """Pearson (not excess) kurtosis: 3 for a normal distribution."""
    values = _returns(returns)
    deviation = values.std()
    return float(np.mean((values - values.mean()) ** 4) / deviation**4) if deviation > 1e-12 else 3.0


def probabilistic_sharpe_ratio(returns: np.ndarray, benchmark_sharpe_per_period: float = 0.0) -> float:
    """P(true per-period Sharpe > benchmark) given skew and kurtosis of the sample (Bailey & Lopez de Prado 2012)."""
    values = _returns(returns)
    estimate = sharpe_per_period(values)
    denominator = 1.0 - skewness(values) * estimate + (kurtosis(values) - 1.0) / 4.0 * estimate**2
    if denominator <= 0 or len(values) < 2:
        return float("nan")
    z = (estimate - benchmark_sharpe_per_period) * math.sqrt(len(values) - 1) / math.sqrt(denominator)
    return _NORMAL.cdf(z)


def expected_max_sharpe(trial_sharpe_variance: float, trials: int) -> float:
    """Expected maximum of `trials` per-period Sharpe estimates whose true value is zero (the DSR benchmark)."""
    if trials < 1:
        raise ValueError("trials must be at least 1")
    if trials == 1:
        return 0.0
    spread = math.sqrt(max(trial_sharpe_variance, 0.0))
    return spread * (
        (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / trials) + EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (trials * math.e))
    )


def deflated_sharpe_ratio(returns: np.ndarray, trials: int, trial_sharpe_variance: float | None = None) -> float:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado 2014): the probabilistic Sharpe ratio against the Sharpe the best
    of `trials` skill-less configurations would show. Without the trials' Sharpe variance, the variance of a single
    Sharpe estimate under the null, 1/(T-1), is used."""
    values = _returns(returns)
    variance = trial_sharpe_variance if trial_sharpe_variance is not None else 1.0 / max(len(values) - 1, 1)
    return probabilistic_sharpe_ratio(values, expected_max_sharpe(variance, trials))


def stationary_bootstrap_indices(length: int, mean_block: float, rng: np.random.Generator) -> np.ndarray:
    """One resample of range(length) by the stationary bootstrap (Politis & Romano 1994): blocks of geometric length
    with mean `mean_block`, wrapping around, so serial dependence inside blocks is kept."""
    indices = np.empty(length, dtype=np.int64)
    restart = rng.random(length) < 1.0 / mean_block
    starts = rng.integers(0, length, size=length)
    indices[0] = starts[0]
    for i in range(1, length):
        indices[i] = starts[i] if restart[i] else (indices[i - 1] + 1) % length
    return indices


@dataclass(frozen=True)
class SharpeDifference:
    difference: float
    lower: float
    upper: float
    confidence: float
    resamples: int
    mean_block: float


def sharpe_difference_interval(
    returns_a: np.ndarray,
    returns_b: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 1000,
    mean_block: float = 20.0,
    seed: int = 0,
) -> SharpeDifference:
    """Percentile confidence interval of Sharpe(a) - Sharpe(b) (annualised) for two strategies on the same days; both
    series are resampled with the same indices so their correlation is kept."""
    a, b = _returns(returns_a), _returns(returns_b)
    if len(a) != len(b):
        raise ValueError("the two strategies must cover the same days")
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for k in range(resamples):
        index = stationary_bootstrap_indices(len(a), mean_block, rng)
        differences[k] = sharpe(a[index]) - sharpe(b[index])
    tail = (1.0 - confidence) / 2.0
    return SharpeDifference(
        difference=sharpe(a) - sharpe(b),
        lower=float(np.quantile(differences, tail)),
        upper=float(np.quantile(differences, 1.0 - tail)),
        confidence=confidence,
        resamples=resamples,
        mean_block=mean_block,
    )


def summary(returns: np.ndarray, turnover: np.ndarray | None = None, costs: np.ndarray | None = None) -> dict:
    """Every metric of one return series, as plain floats for report.json."""
    values = _returns(returns)
    result = {
        "days": len(values),
        "total_return": total_return(values),
        "annualised_return": annualised_return(values),
        "volatility": volatility(values),
        "sharpe": sharpe(values),
        "sortino": sortino(values),
        "calmar": calmar(values),
        "max_drawdown": max_drawdown(values),
        "max_drawdown_duration_days": max_drawdown_duration(values),
        "var_95": value_at_risk(values, 0.95),
        "cvar_95": conditional_value_at_risk(values, 0.95),
        "var_99": value_at_risk(values, 0.99),
        "cvar_99": conditional_value_at_risk(values, 0.99),
        "probabilistic_sharpe": probabilistic_sharpe_ratio(values),
    }
    if turnover is not None:
        result["annual_turnover"] = annual_turnover(turnover)
    if costs is not None:
        result["annual_cost_drag"] = annual_cost_drag(costs)
    return result


def as_dict(difference: SharpeDifference) -> dict:
    return asdict(difference)
