"""The portfolio env's action settings (ActionConfig: logit scale, no-trade band, days between decisions): the env
trades exactly as the walk-forward backtest trades the exported policy, a decision spans its days, and bad settings
are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from trading_agent.envs import ActionConfig, PortfolioEnv, target_weights
from trading_agent.evaluation.backtest import CostModel, run_backtest
from trading_agent.training.config import TrainConfig
from trading_agent.training.portfolio_agent import PortfolioAgentStrategy
from trading_datasets import close_panel

SYMBOLS = ["AAPL", "JNJ", "KO", "XOM"]
COSTS = CostModel(commission_bps=1.0, half_spread_bps=2.0, slippage_bps=3.0)


@pytest.fixture(scope="module")
def panel() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dates, closes = close_panel(SYMBOLS, start="2006-01-01", end="2010-12-31")
    return dates, closes, closes.mean(axis=1)


def linear_policy(path: Path, width: int, actions: int, seed: int) -> Path:
    """A real ONNX graph, action = tanh(obs @ W), with the input and output names of the exported policies."""
    weights = np.random.default_rng(seed).normal(0.0, 0.4, size=(width, actions)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "W"], ["z"]), helper.make_node("Tanh", ["z"], ["action"])],
        "linear",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, actions])],
        [helper.make_tensor("W", TensorProto.FLOAT, weights.shape, weights.flatten().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    "action",
    [ActionConfig(), ActionConfig(scale=2.0, band=0.15, decision_days=5), ActionConfig(scale=1.0, decision_days=3)],
    ids=["daily", "weekly-band", "every-3-days"],
)
def test_the_env_trades_as_the_backtest_trades_the_exported_policy(panel, tmp_path, action):
    """The same policy, stepped in the env over a window from its first day and traded by run_backtest through
    PortfolioAgentStrategy, earns the same net return every day: what training optimises is what is evaluated."""
    dates, closes, index = panel
    start = 600 - 600 % action.decision_days  # the strategy decides on days whose index is a multiple of it
    end = start + 200
    env = PortfolioEnv(closes, index=index, days=(start, end), episode_length=None, costs=COSTS, action=action,
                       random_start=False)  # fmt: skip
    policy = linear_policy(tmp_path / "policy.onnx", env.observation_space.shape[0], len(SYMBOLS) + 1, seed=3)
    strategy = PortfolioAgentStrategy([policy], env.scaler, index, action)
    obs, _ = env.reset()
    env_returns, turnover = [], []
    truncated = False
    while not truncated:
        act = strategy.sessions[0].run(["action"], {"obs": obs[None, :]})[0][0]
        obs, _, _, truncated, info = env.step(act)
        env_returns += info["daily_net_returns"]
        turnover.append(info["turnover"])
    assert len(env_returns) == (end - start) // action.decision_days * action.decision_days
    backtest = run_backtest(dates, closes, strategy, start, end, COSTS)
    np.testing.assert_allclose(env_returns, backtest.returns[: len(env_returns)], rtol=0, atol=1e-6)
    traded_days = np.flatnonzero(backtest.turnover[: len(env_returns)] > 0)
    assert set(traded_days % action.decision_days) == {0}  # trades only on decision days
    if action.band:
        assert 0 in turnover[1:]  # some targets fell inside the band and were not traded
        assert min(t for t in turnover if t > 0) >= action.band


def test_a_decision_spans_its_days_and_pays_once(panel):
    """Five days per decision: the reward is the sum of the days' log returns, the cost is paid on the first day only,
    and the weights drift in between (no trade)."""
    _, closes, index = panel
    weekly = PortfolioEnv(closes, index=index, days=(600, 800), episode_length=20, costs=COSTS, random_start=False,
                          action=ActionConfig(decision_days=5))  # fmt: skip
    weekly.reset()
    action = np.array([1.0, -1.0, 0.5, 0.0, -0.5])
    _, reward, _, truncated, info = weekly.step(action)
    daily = np.array(info["daily_net_returns"])
    assert len(daily) == 5 and not truncated
    assert reward == pytest.approx(100 * np.log1p(daily).sum(), abs=1e-12)
    assert info["net_return"] == pytest.approx(np.prod(1 + daily) - 1, abs=1e-12)
    assert info["cost"] == pytest.approx(info["turnover"] * COSTS.total_bps / 10_000, abs=1e-15)
    weights = target_weights(action)[:-1]
    assert info["turnover"] == pytest.approx(weights.sum(), abs=1e-12)  # bought from cash
    for day, t in enumerate(range(599, 604)):  # the first decision is at the close of day 599
        r = closes[t + 1] / closes[t] - 1.0
        paid = info["cost"] if day == 0 else 0.0
        assert daily[day] == pytest.approx(weights @ r - paid, abs=1e-12)
        weights = weights * (1.0 + r) / (1.0 + weights @ r)  # drifted, not traded back
    np.testing.assert_allclose(weekly.books.weights[0, :-1], weights, atol=1e-12)
    for _ in range(3):
        _, _, _, truncated, _ = weekly.step(action)
    assert truncated  # 20 days are 4 decisions


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"decision_days": 0}, "decision_days must be a positive integer"),
        ({"band": 2.5}, "band must be in"),
        ({"scale": 0}, "scale must be > 0"),
        ({"every": 5}, r"unknown action key\(s\) \['every'\]"),
    ],
)
def test_bad_action_settings_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(env="portfolio", action=values)


def test_an_episode_shorter_than_one_decision_is_refused(panel):
    _, closes, index = panel
    with pytest.raises(ValueError, match="at least one decision of 5 day"):
        PortfolioEnv(closes, index=index, days=(600, 800), episode_length=4, action=ActionConfig(decision_days=5))
