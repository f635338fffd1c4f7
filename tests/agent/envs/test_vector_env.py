"""VectorPortfolioEnv: each of its portfolios steps exactly like a PortfolioEnv, NEXT_STEP autoreset, and the three
rewards by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from trading_agent.envs import PortfolioEnv, RewardConfig, VectorPortfolioEnv, make_env, target_weights
from trading_agent.envs.portfolio import SHARPE_PRIOR_VARIANCE
from trading_agent.evaluation.backtest import CostModel
from trading_datasets import close_panel
from trading_features import PORTFOLIO_WARMUP_BARS

COSTS = CostModel(commission_bps=1.0, half_spread_bps=2.0, slippage_bps=3.0)


@pytest.fixture(scope="module")
def panel() -> tuple[np.ndarray, np.ndarray]:
    _, closes = close_panel(["AAPL", "JNJ", "KO", "XOM"], start="2008-01-01", end="2010-12-31")
    return closes, closes.mean(axis=1)


@pytest.mark.parametrize("kind", ["log_return", "differential_sharpe", "drawdown_penalised"])
def test_every_portfolio_of_the_vector_steps_like_a_single_env(panel, kind):
    closes, index = panel
    reward = RewardConfig(kind=kind)
    vector = VectorPortfolioEnv(closes, index=index, num_envs=3, episode_length=20, costs=COSTS, reward=reward)
    obs, _ = vector.reset(seed=4)
    reset_obs = obs.copy()
    assert obs.shape == (3, *vector.single_observation_space.shape)
    starts = vector.books.t.copy()
    single = PortfolioEnv(
        closes, index=index, episode_length=20, costs=COSTS, reward=reward, scaler=vector.books.scaler
    )
    actions = np.random.default_rng(0).uniform(-1, 1, size=(20, 3, 5)).astype(np.float32)
    vector_rewards, vector_obs = [], []
    for step in range(20):
        obs, rewards, terminated, truncated, _ = vector.step(actions[step])
        vector_rewards.append(rewards)
        vector_obs.append(obs)
        assert not terminated.any()
        assert truncated.all() == (step == 19)
    for k in range(3):
        first, _ = single.reset(options={"start": int(starts[k])})
        np.testing.assert_array_equal(first, reset_obs[k])
        rewards = []
        for step in range(20):
            obs, reward_k, _, truncated, _ = single.step(actions[step, k])
            rewards.append(reward_k)
            np.testing.assert_array_equal(obs, vector_obs[step][k])
        np.testing.assert_allclose(rewards, [r[k] for r in vector_rewards], rtol=0, atol=1e-12)
        assert truncated


def test_next_step_autoreset_ignores_the_action_and_starts_a_new_episode(panel):
    closes, index = panel
    env = make_env({"kind": "portfolio", "closes": closes, "index": index, "episode_length": 3, "num_envs": 2})
    assert isinstance(env, VectorPortfolioEnv) and env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    env.reset(seed=1)
    action = np.zeros((2, 5), dtype=np.float32)
    for _ in range(3):
        _, _, _, truncated, _ = env.step(action)
    assert truncated.all()
    obs, rewards, terminated, truncated, _ = env.step(np.ones((2, 5), dtype=np.float32))
    np.testing.assert_array_equal(rewards, [0.0, 0.0])
    assert not truncated.any() and not terminated.any()
    np.testing.assert_array_equal(obs[:, -5:], np.tile([0, 0, 0, 0, 1], (2, 1)))  # a new episode starts in cash
    assert (env.books.steps == 0).all()


def _two_day_panel() -> tuple[np.ndarray, np.ndarray]:
    warm = 100.0 * (1.0 + 0.001 * np.sin(np.arange(PORTFOLIO_WARMUP_BARS)))[:, None] * np.ones((1, 2))
    warm[-1] = 100.0
    closes = np.vstack([warm, [[110.0, 95.0], [99.0, 95.0]]])
    return closes, closes.mean(axis=1)


def _rollout(kind: str, **options: float) -> tuple[list[float], list[float]]:
    closes, index = _two_day_panel()
    env = PortfolioEnv(closes, index=index, days=(PORTFOLIO_WARMUP_BARS, len(closes)), episode_length=None,
                       costs=COSTS, random_start=False, reward=RewardConfig(kind=kind, scale=1.0, **options))  # fmt: skip
    env.reset()
    action = np.array([0.3, 0.0, -0.3], dtype=np.float32)
    rewards, nets = [], []
    for _ in range(2):
        _, reward, _, _, info = env.step(action)
        rewards.append(reward)
        nets.append(info["net_return"])
    return rewards, nets


def test_differential_sharpe_and_drawdown_rewards_by_hand():
    log_rewards, nets = _rollout("log_return")
    np.testing.assert_allclose(log_rewards, np.log1p(nets), atol=1e-15)
    assert nets[1] < 0  # the second day loses: the drawdown penalty applies there only
    eta = 0.1
    rewards, _ = _rollout("differential_sharpe", sharpe_eta=eta)
    a, b, expected = 0.0, SHARPE_PRIOR_VARIANCE, []
    for r in nets:
        expected.append(eta * (b * (r - a) - 0.5 * a * (r * r - b)) / (b - a * a) ** 1.5)
        a, b = a + eta * (r - a), b + eta * (r * r - b)
    np.testing.assert_allclose(rewards, expected, rtol=1e-12)
    penalty = 2.0
    rewards, _ = _rollout("drawdown_penalised", drawdown_penalty=penalty)
    equity = (1 + nets[0]) * (1 + nets[1])
    drawdown = 1 - equity / (1 + nets[0])
    np.testing.assert_allclose(rewards, [math.log1p(nets[0]), math.log1p(nets[1]) - penalty * drawdown], atol=1e-15)


def test_targets_are_long_only_weights_and_bad_settings_are_named(panel):
    weights = target_weights(np.random.default_rng(1).uniform(-3, 3, size=(50, 6)))
    assert (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    closes, index = panel
    with pytest.raises(ValueError, match="reward must be one of"):
        RewardConfig(kind="sortino")
    with pytest.raises(ValueError, match="num_envs"):
        VectorPortfolioEnv(closes, index=index, num_envs=0)
    with pytest.raises(ValueError, match="days must satisfy"):
        PortfolioEnv(closes, index=index, days=(10, 200))
    env = PortfolioEnv(closes, index=index, episode_length=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be finite"):
        env.step(np.array([np.nan, 0, 0, 0, 0], dtype=np.float32))
