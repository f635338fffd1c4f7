"""The RL agent inside the walk-forward: training is handed the train window (and the validate window for its
reported validation) and nothing after it; the trained policy does not change when test-window prices do; the
per-window budget, seed and costs come from the evaluation config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trading_agent.evaluation import walkforward
from trading_agent.evaluation.backtest import run_backtest
from trading_agent.evaluation.walkforward import (
    AGENT,
    EvaluationConfig,
    agent_status,
    agent_train_config,
    make_windows,
    train_agent_for_window,
)
from trading_agent.training import walkforward_agent
from trading_datasets import close_panel

QUICK = EvaluationConfig.quick()


def quick_panel() -> tuple[np.ndarray, np.ndarray]:
    return close_panel(list(QUICK.symbols), QUICK.source, QUICK.start, QUICK.end)


class StubAgent:
    """Stands in for a trained AgentStrategy: holds cash."""

    def __init__(self, seed: int) -> None:
        validation = {"sharpe": 0.0, "steps": 2, "per_symbol": {}}
        self.info = {"algorithm": "PPO", "iterations": 1, "timesteps": 1, "seed": seed, "validation": validation}

    def __call__(self, history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.zeros(history.shape[1])


def test_training_is_handed_the_train_and_validate_windows_only(monkeypatch) -> None:
    dates, closes = quick_panel()
    windows = make_windows(dates, QUICK)
    calls: list[dict[str, Any]] = []

    def spy(train_closes, validate_closes, config, progress=None):
        calls.append({"train": train_closes, "validate": validate_closes, "config": config})
        return StubAgent(config.seed)

    monkeypatch.setattr(walkforward_agent, "agent_strategy_for_window", spy)
    monkeypatch.setattr("trading_agent.training.trainer.ensure_ray", lambda config: False)  # no Ray for a stub
    outcome = walkforward.run_walk_forward(QUICK)
    assert len(calls) == len(windows) == 2
    for call, window in zip(calls, windows, strict=True):
        # exactly the rows of the train and validate windows, copies: the test window's closes never get there
        np.testing.assert_array_equal(call["train"], closes[window.train[0] : window.train[1]])
        np.testing.assert_array_equal(call["validate"], closes[window.validate[0] : window.validate[1]])
        assert window.validate[1] == window.test[0]
        assert not np.shares_memory(call["train"], closes) and not np.shares_memory(call["validate"], closes)
        assert call["config"].seed == QUICK.seed + window.index
        assert call["config"].long_only and call["config"].iterations == 1
        assert call["config"].cost_model == QUICK.costs  # trained with the costs it is evaluated with
    assert [a["seed"] for a in outcome.agent_windows] == [QUICK.seed, QUICK.seed + 1]
    assert len(outcome.results[AGENT]) == 2 and all(len(t) == len(QUICK.grid) + 1 for t in outcome.trial_sharpes)


@pytest.mark.slow
def test_test_window_prices_do_not_change_the_trained_agent(ray_session) -> None:
    """Train window 0 on the real closes and on closes whose test window (and everything after) is replaced by
    another price path: the same seed gives the same policy, so the same validation figures and the same weights
    on every day before the test window."""
    dates, closes = quick_panel()
    window = make_windows(dates, QUICK)[0]
    perturbed = closes.copy()
    rng = np.random.default_rng(3)
    perturbed[window.test[0] :] *= np.exp(np.cumsum(rng.normal(0.002, 0.03, perturbed[window.test[0] :].shape), axis=0))
    assert not np.allclose(perturbed[window.test[0] :], closes[window.test[0] :])
    train_config = agent_train_config(QUICK)
    real = train_agent_for_window(closes, window, train_config, seed=11)
    other = train_agent_for_window(perturbed, window, train_config, seed=11)
    assert real.info["validation"] == other.info["validation"]
    assert real.info["timesteps"] == other.info["timesteps"] and real.info["seed"] == 11
    before_test = (window.validate[0], window.validate[1])  # the agent's decisions on the validate window's days
    a = run_backtest(dates, closes, real, *before_test, QUICK.costs)
    b = run_backtest(dates, closes, other, *before_test, QUICK.costs)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.weights.sum() > 0  # it trades: the comparison is not between two all-cash books
    observations = rng.normal(size=(64, 6)).astype(np.float32)
    np.testing.assert_array_equal(
        real.session.run(["action"], {"obs": observations})[0], other.session.run(["action"], {"obs": observations})[0]
    )


def test_agent_config_budget_and_status() -> None:
    default = agent_train_config(EvaluationConfig())
    walkforward_yaml = walkforward_agent.walkforward_config()
    assert default.iterations == walkforward_yaml.iterations and default.algorithm == walkforward_yaml.algorithm
    assert default.long_only and default.cost_model == EvaluationConfig().costs
    assert agent_train_config(replace(QUICK, agent_iterations=3)).iterations == 3
    assert agent_train_config(replace(QUICK, agent_config=str(walkforward_agent.WALKFORWARD_CONFIG))).iterations == (
        walkforward_yaml.iterations
    )
    status = agent_status(EvaluationConfig())
    steps = walkforward_yaml.iterations * walkforward_yaml.hyperparameters["train_batch_size_per_learner"]
    assert "PPO" in status and f"{steps:,} steps per window" in status and "train window's closes only" in status
    assert agent_status(replace(QUICK, agent=False)).startswith("not evaluated")


def test_bad_agent_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="agent_config"):
        agent_train_config(replace(QUICK, agent_config="no-such-file.yaml"))
    portfolio = tmp_path / "portfolio.yaml"
    portfolio.write_text("env: portfolio\nreward: {kind: sortino}\n")
    with pytest.raises(ValueError, match="reward must be one of"):
        agent_train_config(replace(QUICK, agent_config=str(portfolio)))
    with pytest.raises(ValueError, match="agent_seeds"):
        replace(QUICK, agent_seeds=0)
    with pytest.raises(ValueError, match=r"windows \[7\] do not exist"):
        from trading_agent.evaluation.walkforward import make_windows
        from trading_datasets import close_panel

        make_windows(close_panel(["AAPL"], "skfolio", "2012-01-01", "2016-12-31")[0], replace(QUICK, windows=(7,)))
    with pytest.raises(ValueError, match="agent_iterations"):
        EvaluationConfig.from_mapping({"agent_iterations": 0})
    with pytest.raises(ValueError, match="agent must be"):
        EvaluationConfig.from_mapping({"agent": "yes"})
