"""Walk-forward evaluation: train / validate / test windows rolling through the real daily closes (skfolio sp500,
1990-2022, via trading_datasets), every candidate evaluated on each test window against the baselines on the same
days with the same costs; the test windows are stitched into one out-of-sample series per strategy.

Candidates:
- `ridge_features`: a learned (not RL) policy: ridge regression of the next day's log return on the standardised
  trading_features of each symbol, fitted on the train window, its hyper-parameters (penalty, rebalance period)
  chosen on the validate window by net Sharpe; holds symbols with a positive forecast, weights in proportion.
- the RL agent: evaluated only when trading_agent exposes a training API (`trading_agent.training`); until then the
  report says so instead of showing a number.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from trading_datasets import close_panel
from trading_features import FEATURE_NAMES, WARMUP_BARS, compute_batch

from trading_agent.evaluation import metrics
from trading_agent.evaluation.backtest import BacktestResult, CostModel, Strategy, baselines, run_backtest

CANDIDATE = "ridge_features"


@dataclass(frozen=True)
class EvaluationConfig:
    name: str = "default"
    symbols: tuple[str, ...] = (
        "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
        "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
    )  # fmt: skip
    source: str = "skfolio"
    start: str = "1990-01-01"
    end: str = "2022-12-31"
    train_years: int = 5
    validate_years: int = 1
    test_years: int = 1
    max_windows: int | None = None
    ridge_penalties: tuple[float, ...] = (1.0, 100.0, 10_000.0)
    rebalance_days: tuple[int, ...] = (1, 5, 21)
    commission_bps: float = 0.5
    half_spread_bps: float = 2.0
    slippage_bps: float = 3.0
    bootstrap_resamples: int = 1000
    bootstrap_mean_block: float = 20.0
    seed: int = 7
    # configurations tried by people before this run (earlier grids, discarded ideas): they count in the deflated Sharpe
    prior_configurations: int = 0

    def __post_init__(self) -> None:
        for key in ("train_years", "validate_years", "test_years", "bootstrap_resamples"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if not self.symbols or not self.ridge_penalties or not self.rebalance_days:
            raise ValueError("symbols, ridge_penalties and rebalance_days must not be empty")
        for key in ("commission_bps", "half_spread_bps", "slippage_bps"):
            if not isinstance(getattr(self, key), int | float) or getattr(self, key) < 0:
                raise ValueError(f"{key} must be a number >= 0, got {getattr(self, key)!r}")

    @property
    def costs(self) -> CostModel:
        return CostModel(self.commission_bps, self.half_spread_bps, self.slippage_bps)

    @property
    def grid(self) -> list[tuple[float, int]]:
        return [(penalty, days) for penalty in self.ridge_penalties for days in self.rebalance_days]

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> EvaluationConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown evaluation config key(s) {unknown}; known keys: {sorted(known)}")
        converted: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)

    @classmethod
    def from_file(cls, path: Path) -> EvaluationConfig:
        """A YAML (or JSON) file of EvaluationConfig keys; omitted keys keep their defaults."""
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"cannot read the evaluation config {path}: {error}") from error
        if not isinstance(values, dict):
            raise ValueError(f"the evaluation config {path} must be a mapping of keys to values")
        return cls.from_mapping(values)

    @classmethod
    def quick(cls) -> EvaluationConfig:
        """A few symbols, two short windows, a small grid: for tests and a first look (seconds, not minutes)."""
        return cls(
            name="quick",
            symbols=("AAPL", "JNJ", "KO", "XOM"),
            start="2012-01-01",
            train_years=2,
            max_windows=2,
            ridge_penalties=(1.0, 1000.0),
            rebalance_days=(5,),
            bootstrap_resamples=200,
        )


@dataclass(frozen=True)
class Window:
    index: int
    train: tuple[int, int]
    validate: tuple[int, int]
    test: tuple[int, int]

    def describe(self, dates: np.ndarray) -> dict[str, Any]:
        def span(bounds: tuple[int, int]) -> list[str]:
            return [str(dates[bounds[0]]), str(dates[bounds[1] - 1])]

        return {
            "index": self.index,
            "train": span(self.train),
            "validate": span(self.validate),
            "test": span(self.test),
        }


def make_windows(dates: np.ndarray, config: EvaluationConfig) -> list[Window]:
    """Calendar-year windows: train [y, y+T), validate [y+T, y+T+V), test [y+T+V, y+T+V+S); then y moves by S."""
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    first, last = int(years[0]), int(years[-1])

    def index_of(year: int) -> int:
        return int(np.searchsorted(years, year))

    windows: list[Window] = []
    year = first
    while year + config.train_years + config.validate_years + config.test_years - 1 <= last:
        a = index_of(year)
        b = index_of(year + config.train_years)
        c = index_of(year + config.train_years + config.validate_years)
        d = index_of(year + config.train_years + config.validate_years + config.test_years)
        windows.append(Window(len(windows), (a, b), (b, c), (c, d)))
        year += config.test_years
        if config.max_windows is not None and len(windows) >= config.max_windows:
            break
    if not windows:
        raise ValueError(f"{first}-{last} is too short for {config.train_years}+{config.validate_years}+"
                         f"{config.test_years} years of train/validate/test")  # fmt: skip
    return windows


@dataclass
class RidgeModel:
    """Linear forecast of the next day's log return from standardised features, shared across symbols."""

    mean: np.ndarray
    scale: np.ndarray
    coefficients: np.ndarray
    intercept: float
    penalty: float

    def forecast(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.coefficients + self.intercept


def fit_ridge(closes: np.ndarray, penalty: float) -> RidgeModel:
    """Fit on one window of closes only: features at t (closes up to t) against log(close[t+1] / close[t])."""
    rows, targets = [], []
    for i in range(closes.shape[1]):
        features = compute_batch(closes[:, i])[:-1]
        forward = np.diff(np.log(closes[:, i]))
        keep = ~np.isnan(features).any(axis=1)
        rows.append(features[keep])
        targets.append(forward[keep])
    x, y = np.vstack(rows), np.concatenate(targets)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    centred = y - y.mean()
    coefficients = np.linalg.solve(z.T @ z + penalty * np.eye(z.shape[1]), z.T @ centred)
    return RidgeModel(mean, scale, coefficients, float(y.mean()), penalty)


def ridge_strategy(model: RidgeModel, rebalance_days: int) -> Strategy:
    def strategy(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if weights.sum() > 0 and len(history) % rebalance_days:
            return weights
        window = history[-WARMUP_BARS:]
        features = np.array([compute_batch(window[:, i])[-1] for i in range(history.shape[1])])
        positive = np.maximum(model.forecast(features), 0.0)
        total = positive.sum()
        return positive / total if total > 0 else np.zeros(history.shape[1])

    return strategy


def agent_status() -> str:
    if importlib.util.find_spec("trading_agent.training") is None:
        return "not evaluated: trading_agent has no training API yet (issue 5); no RL figure is reported"
    return "trading_agent.training exists but is not wired into the walk-forward yet; no RL figure is reported"


@dataclass
class WalkForwardResult:
    config: EvaluationConfig
    dates: np.ndarray
    windows: list[Window]
    results: dict[str, list[BacktestResult]] = field(default_factory=dict)
    chosen: list[dict[str, Any]] = field(default_factory=list)
    trial_sharpes: list[list[float]] = field(default_factory=list)  # per window: per-period validate Sharpe per config

    def stitched(self, strategy: str) -> BacktestResult:
        parts = self.results[strategy]
        return BacktestResult(
            np.concatenate([p.dates for p in parts]),
            np.concatenate([p.returns for p in parts]),
            np.vstack([p.weights for p in parts]),
            np.concatenate([p.turnover for p in parts]),
            np.concatenate([p.costs for p in parts]),
        )


def run_walk_forward(config: EvaluationConfig, progress: Callable[[Window], None] | None = None) -> WalkForwardResult:
    dates, closes = close_panel(list(config.symbols), config.source, config.start, config.end)
    windows = make_windows(dates, config)
    outcome = WalkForwardResult(config, dates, windows)
    costs = config.costs
    for window in windows:
        train_closes = closes[window.train[0] : window.train[1]]
        best: tuple[float, float, int] | None = None
        tried = []
        outcome.trial_sharpes.append([])
        for penalty, days in config.grid:
            model = fit_ridge(train_closes, penalty)
            validation = run_backtest(dates, closes, ridge_strategy(model, days), *window.validate, costs)
            score = metrics.sharpe(validation.returns)
            tried.append({"penalty": penalty, "rebalance_days": days, "validate_sharpe": score})
            outcome.trial_sharpes[-1].append(metrics.sharpe_per_period(validation.returns))
            if best is None or score > best[0]:
                best = (score, penalty, days)
        assert best is not None
        _, penalty, days = best
        model = fit_ridge(train_closes, penalty)
        outcome.chosen.append(
            {
                "window": window.index,
                "penalty": penalty,
                "rebalance_days": days,
                "coefficients": dict(zip(FEATURE_NAMES, model.coefficients.round(8).tolist(), strict=True)),
                "grid": tried,
            }
        )
        strategies = {CANDIDATE: ridge_strategy(model, days), **baselines()}
        for name, strategy in strategies.items():
            outcome.results.setdefault(name, []).append(run_backtest(dates, closes, strategy, *window.test, costs))
        if progress is not None:
            progress(window)
    return outcome


def report_figures(outcome: WalkForwardResult) -> dict[str, Any]:
    """Every figure of the study, for report.json (and the HTML built from it)."""
    config = outcome.config
    strategies: dict[str, Any] = {}
    for name in outcome.results:
        stitched = outcome.stitched(name)
        strategies[name] = {
            "out_of_sample": metrics.summary(stitched.returns, stitched.turnover, stitched.costs),
            "windows": [metrics.summary(p.returns, p.turnover, p.costs) for p in outcome.results[name]],
        }
    candidate = outcome.stitched(CANDIDATE).returns
    comparisons = {
        name: metrics.as_dict(
            metrics.sharpe_difference_interval(
                candidate,
                outcome.stitched(name).returns,
                resamples=config.bootstrap_resamples,
                mean_block=config.bootstrap_mean_block,
                seed=config.seed,
            )
        )
        for name in outcome.results
        if name != CANDIDATE
    }
    trials = len(config.grid) + config.prior_configurations
    # the spread of Sharpe between the configurations tried on the same data (averaged over windows), not between
    # market regimes: that is the dispersion the luck of picking the best configuration comes from
    variance = float(np.mean([np.var(s, ddof=1) for s in outcome.trial_sharpes])) if len(config.grid) > 1 else None
    return {
        "name": config.name,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.__dict__.items()},
        "seeds": {"bootstrap": config.seed},
        "generated_from": {
            "data": f"{config.source} adjusted closes via trading_datasets",
            "first_day": str(outcome.dates[0]),
            "last_day": str(outcome.dates[-1]),
            "models": {CANDIDATE: "ridge-features-1", "signal_baseline_policy": _baseline_version()},
        },
        "cost_model_bps": {
            "commission": config.commission_bps,
            "half_spread": config.half_spread_bps,
            "slippage": config.slippage_bps,
        },
        "windows": [w.describe(outcome.dates) for w in outcome.windows],
        "candidate": CANDIDATE,
        "candidate_choices": outcome.chosen,
        "configurations_tried": trials,
        "deflated_sharpe": {
            "value": metrics.deflated_sharpe_ratio(candidate, trials, variance),
            "trials": trials,
            "trial_sharpe_variance_per_period": variance,
        },
        "agent": agent_status(),
        "strategies": strategies,
        "sharpe_difference_vs_candidate": comparisons,
    }


def _baseline_version() -> str:
    from trading_policy import BaselinePolicy

    return BaselinePolicy().model_version
