"""Backtest engine speed on the real skfolio closes: per-decision latency of each strategy (the engine loop, the
strategy and the cost accounting), days per second, and the time of a walk-forward window (fit, 9-config grid on
validate, every strategy on test), without and with the RL agent's per-window training (walkforward.yaml budget),
and the trained agent's decision latency (features of 20 symbols + one ONNX call)."""

from __future__ import annotations

import time

import numpy as np
from trading_agent.evaluation import CostModel, baselines, run_backtest
from trading_agent.evaluation.walkforward import (
    EvaluationConfig,
    agent_train_config,
    fit_ridge,
    make_windows,
    ridge_strategy,
    run_walk_forward,
    train_agent_for_window,
)
from trading_datasets import close_panel

from tests.benchmarks.stats import latency_summary, write_results


def timed(strategy, closes: np.ndarray) -> list[int]:
    samples: list[int] = []

    def clocked(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        started = time.perf_counter_ns()
        target = strategy(history, weights)
        samples.append(time.perf_counter_ns() - started)
        return target

    run_backtest(np.arange(len(closes)), closes, clocked, 300, len(closes), CostModel())
    return samples


def main() -> None:
    config = EvaluationConfig()
    _, closes = close_panel(list(config.symbols), start="2015-01-01", end="2020-12-31")
    figures: dict[str, object] = {"symbols": len(config.symbols), "days": len(closes) - 300}
    strategies = {**baselines(), "ridge_features": ridge_strategy(fit_ridge(closes[:300], 100.0), 1)}
    for name, strategy in strategies.items():
        started = time.perf_counter()
        run_backtest(np.arange(len(closes)), closes, strategy, 300, len(closes), CostModel())
        elapsed = time.perf_counter() - started
        figures[name] = {
            "decision_latency": latency_summary(timed(strategy, closes)),
            "days_per_second": round((len(closes) - 300) / elapsed, 1),
        }
    windows = 3
    started = time.perf_counter()
    run_walk_forward(EvaluationConfig(start="2010-01-01", max_windows=windows, agent=False))
    figures["walk_forward_seconds_per_window"] = round((time.perf_counter() - started) / windows, 3)

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        config = EvaluationConfig(start="2010-01-01", max_windows=windows)
        started = time.perf_counter()
        outcome = run_walk_forward(config)
        figures["walk_forward_with_agent_seconds_per_window"] = round((time.perf_counter() - started) / windows, 3)
        figures["agent_training_seconds_per_window"] = outcome.timings["agent_training_s"]
        dates, panel = close_panel(list(config.symbols), start="2010-01-01", end="2017-12-31")
        window = make_windows(dates, config)[0]
        agent = train_agent_for_window(panel, window, agent_train_config(config), config.seed)
        figures["rl_agent"] = {"decision_latency": latency_summary(timed(agent, closes))}
    finally:
        ray.shutdown()
    write_results("backtest", figures)


if __name__ == "__main__":
    main()
