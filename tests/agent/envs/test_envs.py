"""The RL environments: gymnasium API, no look-ahead, reward arithmetic by hand, train-only scaler, seeded episodes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from trading_agent.envs import (
    PortfolioEnv,
    RewardConfig,
    Scaler,
    SingleAssetEnv,
    feature_panel,
    make_env,
    observation_rows,
)
from trading_agent.evaluation.backtest import CostModel
from trading_datasets import close_panel
from trading_features import (
    ASSET_FEATURES,
    FEATURE_NAMES,
    MARKET_FEATURES,
    PORTFOLIO_WARMUP_BARS,
    WARMUP_BARS,
    compute_batch,
)

COSTS = CostModel(commission_bps=1.0, half_spread_bps=2.0, slippage_bps=3.0)  # 6 bps of the traded fraction


@pytest.fixture(scope="module")
def panel() -> np.ndarray:
    _, closes = close_panel(["AAPL", "JNJ", "KO"], start="2010-01-01", end="2012-12-31")
    return closes


def synthetic(days: int, symbols: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, size=(days, symbols)), axis=0))


def rollout(env, actions, **reset):
    obs, _ = env.reset(**reset)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(np.asarray(action, dtype=np.float32))
        observations.append(obs)
        rewards.append(reward)
        assert not terminated
        if truncated:
            break
    return np.array(observations), np.array(rewards)


def test_gymnasium_check_env_passes(panel):
    for env in (
        SingleAssetEnv(panel[:, 0], episode_length=50),
        SingleAssetEnv(panel, episode_length=50, long_only=True),
        PortfolioEnv(panel, index=panel.mean(axis=1), episode_length=50),
    ):
        check_env(env, skip_render_check=True)


def test_spaces_and_observation_layout(panel):
    env = SingleAssetEnv(panel[:, 0], long_only=True, episode_length=10)
    assert env.action_space.shape == (1,) and env.action_space.low[0] == 0.0 and env.action_space.high[0] == 1.0
    assert SingleAssetEnv(panel[:, 0]).action_space.low[0] == -1.0
    obs, info = env.reset(seed=1)
    assert obs.dtype == np.float32 and obs.shape == (len(FEATURE_NAMES) + 1,)
    t = info["day"]
    expected = np.clip((compute_batch(panel[:, 0])[t] - env.scaler.mean) / env.scaler.std, -5, 5)
    np.testing.assert_allclose(obs[:5], expected, rtol=1e-6, atol=1e-6)
    assert obs[5] == 0.0
    obs, *_ = env.step(np.array([0.7], dtype=np.float32))
    assert obs[5] == pytest.approx(0.7)
    portfolio = PortfolioEnv(panel, index=panel.mean(axis=1), episode_length=10)
    obs, _ = portfolio.reset(seed=1)
    assert obs.shape == (3 * len(ASSET_FEATURES) + len(MARKET_FEATURES) + 4,)
    np.testing.assert_allclose(obs[-4:], [0, 0, 0, 1])  # starts in cash


@pytest.mark.parametrize("kind", ["single", "portfolio"])
def test_no_look_ahead_perturbing_the_future_changes_nothing_before(panel, kind):
    closes = panel.copy()
    cut = 300  # the last day whose observation must not move
    perturbed = closes.copy()
    perturbed[cut + 1 :] *= np.random.default_rng(1).uniform(0.5, 1.5, size=perturbed[cut + 1 :].shape)
    scaler = Scaler.fit(feature_panel(closes[: cut + 1]))  # shared, so only the features themselves are compared
    index = closes.mean(axis=1)
    portfolio_scaler = observation_rows(closes[: cut + 1], index[: cut + 1])[1]
    warm = WARMUP_BARS if kind == "single" else PORTFOLIO_WARMUP_BARS

    def make(data):
        if kind == "single":
            return SingleAssetEnv(data, days=(WARMUP_BARS, len(data)), episode_length=None, scaler=scaler,
                                  costs=COSTS, random_start=False)  # fmt: skip
        moved = index.copy()
        moved[cut + 1 :] = data[cut + 1 :].mean(axis=1)  # the index moves with the perturbed future too
        return PortfolioEnv(data, index=moved, days=(warm, len(data)), episode_length=None, scaler=portfolio_scaler,
                            costs=COSTS, random_start=False)  # fmt: skip

    actions = np.random.default_rng(2).uniform(-1, 1, size=(len(closes), 1 if kind == "single" else 4))
    options = {"options": {"symbol": 1}} if kind == "single" else {}
    obs_a, rewards_a = rollout(make(closes), actions, **options)
    obs_b, rewards_b = rollout(make(perturbed), actions, **options)
    first_day = warm - 1
    upto = cut - first_day  # observation i is taken at the close of day first_day + i
    np.testing.assert_array_equal(obs_a[: upto + 1], obs_b[: upto + 1])
    # the reward of the decision at `cut` is earned over cut -> cut + 1: everything before it is unchanged
    np.testing.assert_array_equal(rewards_a[:upto], rewards_b[:upto])
    assert not np.array_equal(obs_a[upto + 2 :], obs_b[upto + 2 :])


def test_single_asset_reward_by_hand():
    closes = np.concatenate([np.full(WARMUP_BARS, 100.0), [101.0, 99.0, 99.0]])
    env = SingleAssetEnv(closes, days=(WARMUP_BARS, len(closes)), episode_length=None, costs=COSTS,
                         random_start=False)  # fmt: skip
    _, rewards = rollout(env, [[0.5], [-0.25], [-0.25]])
    rate = 6 / 10_000
    expected = [
        0.5 * math.log(101 / 100) - rate * 0.5,  # from flat to +0.5
        -0.25 * math.log(99 / 101) - rate * 0.75,  # +0.5 -> -0.25
        -0.25 * math.log(99 / 99) - 0.0,  # unchanged: no cost
    ]
    np.testing.assert_allclose(rewards, expected, rtol=0, atol=1e-15)
    # actions outside the bounds are clipped (long only: a short becomes flat)
    long_only = SingleAssetEnv(closes, days=(WARMUP_BARS, len(closes)), episode_length=None, costs=COSTS,
                               long_only=True, random_start=False)  # fmt: skip
    _, clipped = rollout(long_only, [[1.7], [-0.3]])
    np.testing.assert_allclose(clipped, [math.log(1.01) - rate, -rate * 1.0], atol=1e-15)


def test_portfolio_reward_by_hand_with_drift_and_costs():
    noise = 1.0 + 0.001 * np.sin(np.arange(PORTFOLIO_WARMUP_BARS))[:, None]  # warm-up days with some variance
    closes = np.vstack([100.0 * noise * [1.0, 1.0], [[110.0, 95.0], [110.0, 95.0]]])
    closes[PORTFOLIO_WARMUP_BARS - 1] = 100.0
    env = PortfolioEnv(closes, index=closes.mean(axis=1), days=(PORTFOLIO_WARMUP_BARS, len(closes)),
                       episode_length=None, costs=COSTS, random_start=False, reward=RewardConfig(scale=1.0))  # fmt: skip
    action = np.array([0.2, 0.0, -0.2], dtype=np.float32)
    w = np.exp(5 * action.astype(np.float64)) / np.exp(5 * action.astype(np.float64)).sum()
    obs, rewards = rollout(env, [action, action])
    rate = 6 / 10_000
    gross = w[0] * 0.10 + w[1] * -0.05
    first = math.log(1 + gross - rate * (w[0] + w[1]))
    drifted = np.array([w[0] * 1.10, w[1] * 0.95, w[2]]) / (1 + gross)
    np.testing.assert_allclose(obs[1][-3:], drifted, rtol=1e-6)
    second = math.log(1 + 0.0 - rate * (abs(w[0] - drifted[0]) + abs(w[1] - drifted[1])))
    np.testing.assert_allclose(rewards, [first, second], rtol=0, atol=1e-12)


def test_scaler_is_fitted_on_the_training_window_only(panel):
    train_end = 400
    changed = panel.copy()
    changed[train_end:] *= 3.0
    changed[train_end + 10 :] *= np.random.default_rng(5).uniform(0.8, 1.2, size=changed[train_end + 10 :].shape)
    a = Scaler.fit(feature_panel(panel[:train_end]))
    b = Scaler.fit(feature_panel(changed), rows=slice(0, train_end))
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    # an env over the training days fits its default scaler on those days only
    env_a = SingleAssetEnv(panel, days=(WARMUP_BARS, train_end))
    env_b = SingleAssetEnv(changed, days=(WARMUP_BARS, train_end))
    np.testing.assert_array_equal(env_a.scaler.mean, env_b.scaler.mean)
    assert not np.array_equal(Scaler.fit(feature_panel(changed)).mean, a.mean)


def test_scaler_round_trip_and_validation():
    scaler = Scaler.fit(feature_panel(synthetic(200)))
    again = Scaler.from_dict(scaler.to_dict())
    assert set(scaler.to_dict()) == {"mean", "std"}
    np.testing.assert_array_equal(again.mean, scaler.mean)
    np.testing.assert_array_equal(again.std, scaler.std)
    with pytest.raises(ValueError):
        Scaler.from_dict({"mean": [0.0] * 4, "std": [1.0] * 4})
    with pytest.raises(ValueError):
        Scaler.fit(feature_panel(synthetic(WARMUP_BARS)))


@pytest.mark.parametrize("kind", ["single", "portfolio"])
def test_seeds_reproduce_episodes(panel, kind):
    def episode(seed):
        env = make_env({"kind": kind, "closes": panel, "index": panel.mean(axis=1), "episode_length": 30})
        actions = np.random.default_rng(0).uniform(-1, 1, size=(30, env.action_space.shape[0]))
        obs, info = env.reset(seed=seed)
        observations, rewards = [obs], []
        for action in actions:
            obs, reward, _, truncated, _ = env.step(action)
            observations.append(obs)
            rewards.append(reward)
        assert truncated
        return info, np.array(observations), np.array(rewards)

    info_a, obs_a, rewards_a = episode(11)
    info_b, obs_b, rewards_b = episode(11)
    assert info_a == info_b
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rewards_a, rewards_b)
    starts = {episode(seed)[0]["day"] for seed in range(5)}
    assert len(starts) > 1


def test_episodes_stay_inside_the_window(panel):
    env = SingleAssetEnv(panel, days=(100, 200), episode_length=40)
    for seed in range(30):
        _, info = env.reset(seed=seed)
        assert 99 <= info["day"] <= 200 - 1 - 40
    with pytest.raises(ValueError):
        SingleAssetEnv(panel, days=(5, 200))  # before warm-up
    with pytest.raises(ValueError):
        SingleAssetEnv(panel, days=(100, 200), episode_length=101)
    with pytest.raises(ValueError):
        make_env({"kind": "pairs", "closes": panel})
