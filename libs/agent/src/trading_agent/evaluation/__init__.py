"""Honest evaluation of trading policies: metrics, a look-ahead-free daily backtest with the shared cost model,
baselines, walk-forward train/validate/test over real daily closes, and the HTML/JSON report (docs/evaluation.md)."""

from trading_agent.evaluation.backtest import (
    BacktestResult,
    CostModel,
    Strategy,
    baselines,
    buy_and_hold,
    equal_weight,
    feature_policy,
    momentum,
    moving_average_crossover,
    run_backtest,
)

__all__ = [
    "BacktestResult",
    "CostModel",
    "Strategy",
    "baselines",
    "buy_and_hold",
    "equal_weight",
    "feature_policy",
    "momentum",
    "moving_average_crossover",
    "run_backtest",
]
