"""N symbols and cash, rebalanced every day to the target weights of the agent's action: one portfolio
(`PortfolioEnv`, a gymnasium Env) or many stepped together in numpy (`VectorPortfolioEnv`, a gymnasium VectorEnv:
what RLlib's env runners step, one batched forward pass for all of them).

Observation at the close of day t: the scaled, clipped `trading_features.portfolio` features of every symbol
(N * len(ASSET_FEATURES), symbol-major), the market index's (len(MARKET_FEATURES)), then the current weights (N + 1,
symbols then cash; the weights held into day t after they drifted with prices). Features use days up to t only.
Action (`ActionConfig`): N + 1 values in [-1, 1]; target weights = softmax(scale * action) over the symbols and cash
(long only, summing to 1). A target within `band` (the L1 distance over the symbols) of the drifted weights is not
traded: the drifted weights are held and nothing is paid. A decision every `decision_days` days: one step of the env
is that many days, the weights drifting with prices in between, its reward the sum of the days'. Turnover pays the
evaluation's `CostModel`: cost = CostModel rate * sum |target - drifted weights| (cash is the other side of every trade
and is not charged), net = w . r - cost: the accounting of `run_backtest`.

Rewards (`reward`), all multiplied by `reward_scale` (default 100: daily figures in percent, so the value function
sees numbers near 1):
- `log_return`: log(1 + net).
- `differential_sharpe`: Moody & Saffell's differential Sharpe ratio, eta * D_t with
  D_t = (B_{t-1} dA_t - A_{t-1} dB_t / 2) / (B_{t-1} - A_{t-1}^2)^(3/2), A and B exponential moving averages
  (rate eta = `sharpe_eta`) of net and net^2 over the episode, started at A = 0, B = SHARPE_PRIOR_VARIANCE.
- `drawdown_penalised`: log(1 + net) - `drawdown_penalty` * max(0, drawdown_t - drawdown_{t-1}), the drawdown of
  the episode's equity from its running peak: every new low costs, recovering is free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from trading_features import ASSET_FEATURES, MARKET_FEATURES, PORTFOLIO_WARMUP_BARS, compute_panel

from trading_agent.envs.scaler import CLIP, Scaler
from trading_agent.evaluation.backtest import CostModel

LOGIT_SCALE = 5.0
"""The default scale: logits = 5 * action, an action in [-1, 1] per asset spans weight ratios up to e^10."""
REWARDS = ("log_return", "differential_sharpe", "drawdown_penalised")
SHARPE_PRIOR_VARIANCE = 1e-4
"""B's starting value in the differential Sharpe ratio: a 1% daily volatility, so the first steps are not divided
by zero."""


@dataclass(frozen=True)
class RewardConfig:
    kind: str = "log_return"
    scale: float = 100.0
    sharpe_eta: float = 1.0 / 63.0
    drawdown_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {self.kind!r}")
        if not 0.0 < self.sharpe_eta < 1.0:
            raise ValueError(f"sharpe_eta must be in (0, 1), got {self.sharpe_eta!r}")
        if self.scale <= 0 or self.drawdown_penalty < 0:
            raise ValueError(f"reward_scale must be > 0 and drawdown_penalty >= 0, got {self}")


@dataclass(frozen=True)
class ActionConfig:
    """How an action becomes the weights held (the module's docstring): the logit `scale`, the no-trade `band` (L1
    over the symbols, 0: every change is traded) and the days between decisions."""

    scale: float = LOGIT_SCALE
    band: float = 0.0
    decision_days: int = 1

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"action scale must be > 0, got {self.scale!r}")
        if not 0.0 <= self.band < 2.0:
            raise ValueError(f"action band must be in [0, 2) (an L1 distance between weights), got {self.band!r}")
        if not isinstance(self.decision_days, int) or isinstance(self.decision_days, bool) or self.decision_days < 1:
            raise ValueError(f"action decision_days must be a positive integer, got {self.decision_days!r}")


def within_band(target: np.ndarray, drifted: np.ndarray, band: float) -> np.ndarray:
    """Row-wise: is the target's L1 distance from the drifted weights over the symbols (..., N) below the band?"""
    return np.abs(target - drifted).sum(axis=-1) < band


@dataclass(frozen=True)
class PortfolioScaler:
    """Standardisation of the asset features (pooled over symbols) and of the market features, fitted on the
    training days only; saved with the policy."""

    assets: Scaler
    market: Scaler

    @classmethod
    def fit(cls, assets: np.ndarray, market: np.ndarray, end: int) -> PortfolioScaler:
        """Fit on rows [0, end) of (T, N, F) asset and (T, G) market features (NaN warm-up rows skipped)."""
        return cls(Scaler.fit(assets[:end].transpose(1, 0, 2)), Scaler.fit(market[:end]))

    def to_dict(self) -> dict[str, Any]:
        return {"assets": self.assets.to_dict(), "market": self.market.to_dict()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PortfolioScaler:
        return cls(
            Scaler.from_dict(values["assets"], width=len(ASSET_FEATURES)),
            Scaler.from_dict(values["market"], width=len(MARKET_FEATURES)),
        )


def observation_rows(
    closes: np.ndarray, index: np.ndarray, scaler: PortfolioScaler | None = None, fit_end: int | None = None
) -> tuple[np.ndarray, PortfolioScaler]:
    """The feature part of every day's observation, (T, N * len(ASSET_FEATURES) + len(MARKET_FEATURES)) float32, and
    the scaler (fitted on rows [0, fit_end) when not given). Warm-up rows are 0."""
    assets, market = compute_panel(closes, index)
    if scaler is None:
        scaler = PortfolioScaler.fit(assets, market, len(closes) if fit_end is None else fit_end)
    rows = np.concatenate(
        [scaler.assets.transform(assets).reshape(len(closes), -1), scaler.market.transform(market)], axis=1
    )
    return np.ascontiguousarray(rows, dtype=np.float32), scaler


def target_weights(actions: np.ndarray, scale: float = LOGIT_SCALE) -> np.ndarray:
    """Softmax of scale * actions clipped to [-1, 1], row-wise: (..., N + 1) -> weights (symbols, cash)."""
    z = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0) * scale
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def check_window(days: tuple[int, int] | None, length: int) -> tuple[int, int]:
    start, end = days if days is not None else (PORTFOLIO_WARMUP_BARS, length)
    if not PORTFOLIO_WARMUP_BARS <= start < end <= length:
        raise ValueError(
            f"days must satisfy {PORTFOLIO_WARMUP_BARS} <= start < end <= {length} (the portfolio features need "
            f"{PORTFOLIO_WARMUP_BARS - 1} earlier days), got ({start}, {end})"
        )
    return int(start), int(end)


class _Books:
    """The state of M portfolios over one close panel, advanced together."""

    def __init__(
        self,
        closes: np.ndarray,
        index: np.ndarray,
        count: int,
        days: tuple[int, int] | None,
        episode_length: int | None,
        costs: CostModel | None,
        scaler: PortfolioScaler | None,
        reward: RewardConfig,
        action: ActionConfig,
    ) -> None:
        panel = np.asarray(closes, dtype=np.float64)
        self.start, self.end = check_window(days, len(panel))
        self.features, self.scaler = observation_rows(panel, index, scaler, fit_end=self.end)
        self.n = panel.shape[1]
        window = self.end - self.start
        self.episode_length = window if episode_length is None else int(episode_length)
        self.action = action
        every = action.decision_days
        if not every <= self.episode_length <= window:
            raise ValueError(
                f"episode_length must be in [{every}, {window}] (at least one decision of {every} day(s), at most the "
                f"window's days), got {episode_length}"
            )
        self.episode_steps = self.episode_length // every
        self.costs = costs if costs is not None else CostModel()
        self.rate = self.costs.total_bps / 10_000.0
        self.reward = reward
        self.simple_returns = panel[1:] / panel[:-1] - 1.0
        self.width = self.features.shape[1]
        self.count = count
        self.t = np.full(count, self.start - 1)
        self.steps = np.zeros(count, dtype=np.int64)
        self.weights = np.zeros((count, self.n + 1))
        self.weights[:, -1] = 1.0
        self.sharpe_a = np.zeros(count)
        self.sharpe_b = np.full(count, SHARPE_PRIOR_VARIANCE)
        self.equity = np.ones(count)
        self.peak = np.ones(count)
        self.last_first = self.end - 1 - self.episode_steps * every

    def reset(self, rows: np.ndarray, firsts: np.ndarray) -> None:
        self.t[rows] = firsts
        self.steps[rows] = 0
        self.weights[rows] = 0.0
        self.weights[rows, -1] = 1.0
        self.sharpe_a[rows] = 0.0
        self.sharpe_b[rows] = SHARPE_PRIOR_VARIANCE
        self.equity[rows] = 1.0
        self.peak[rows] = 1.0

    def observe(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        obs = np.empty((len(self.t[rows]), self.width + self.n + 1), dtype=np.float32)
        obs[:, : self.width] = self.features[self.t[rows]]
        obs[:, self.width :] = self.weights[rows]
        return obs

    def advance(self, actions: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Step the portfolios `rows` with their actions (len(rows), N + 1) through one decision's days: rewards and
        the figures (cost, turnover, the compounded net return, and "daily": each day's net return)."""
        target = target_weights(actions, self.action.scale)
        if not np.all(np.isfinite(target)):
            raise ValueError(f"actions must be finite, got {actions!r}")
        n = self.n
        drifted = self.weights[rows]
        if self.action.band > 0:
            hold = within_band(target[:, :n], drifted[:, :n], self.action.band)
            target[hold] = drifted[hold]
        traded = np.abs(target[:, :n] - drifted[:, :n]).sum(axis=1)
        cost = traded * self.rate
        reward = np.zeros(len(rows))
        daily = np.empty((len(rows), self.action.decision_days))
        for day in range(self.action.decision_days):
            t = self.t[rows]
            r = self.simple_returns[t]
            gross = np.einsum("ij,ij->i", target[:, :n], r)
            net = gross - cost if day == 0 else gross
            reward += self._reward(net, rows)
            daily[:, day] = net
            # the weights drift with prices until the next decision; cash earns nothing
            target[:, :n] *= 1.0 + r
            target /= (1.0 + gross)[:, None]
            self.t[rows] = t + 1
        self.weights[rows] = target
        self.steps[rows] += 1
        figures = {"cost": cost, "net_return": np.prod(1.0 + daily, axis=1) - 1.0, "turnover": traded, "daily": daily}
        return reward * self.reward.scale, figures

    def _reward(self, net: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """One day's reward of the portfolios `rows` (unscaled), updating the running statistics it needs."""
        log_return = np.log1p(net)
        kind = self.reward.kind
        if kind == "log_return":
            return log_return
        if kind == "differential_sharpe":
            a, b, eta = self.sharpe_a[rows], self.sharpe_b[rows], self.reward.sharpe_eta
            delta_a, delta_b = net - a, net * net - b
            variance = np.maximum(b - a * a, 1e-12)
            self.sharpe_a[rows] = a + eta * delta_a
            self.sharpe_b[rows] = b + eta * delta_b
            return eta * (b * delta_a - 0.5 * a * delta_b) / variance**1.5
        before = 1.0 - self.equity[rows] / self.peak[rows]
        equity = self.equity[rows] * (1.0 + net)
        peak = np.maximum(self.peak[rows], equity)
        self.equity[rows], self.peak[rows] = equity, peak
        return log_return - self.reward.drawdown_penalty * np.maximum(0.0, (1.0 - equity / peak) - before)


def _spaces(books: _Books) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    n = books.n
    low = np.concatenate([np.full(books.width, -CLIP), np.zeros(n + 1)]).astype(np.float32)
    high = np.concatenate([np.full(books.width, CLIP), np.ones(n + 1)]).astype(np.float32)
    return (
        gym.spaces.Box(low, high, dtype=np.float32),
        gym.spaces.Box(-1.0, 1.0, shape=(n + 1,), dtype=np.float32),
    )


class PortfolioEnv(gym.Env):
    """One portfolio of the close panel (days, N) over days [start, end); `index` (days,) is the market index.
    Episodes of `episode_length` days, episode_length // decision_days decisions (None: the whole window), from a
    start drawn with the env's seeded RNG (`random_start`) or the window's first decision; `reset(options={"start":
    day})` picks it."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's own declaration

    def __init__(
        self,
        closes: np.ndarray,
        *,
        index: np.ndarray,
        days: tuple[int, int] | None = None,
        episode_length: int | None = 252,
        costs: CostModel | None = None,
        scaler: PortfolioScaler | None = None,
        reward: RewardConfig | None = None,
        action: ActionConfig | None = None,
        random_start: bool = True,
    ) -> None:
        self.books = _Books(
            closes, index, 1, days, episode_length, costs, scaler, reward or RewardConfig(), action or ActionConfig()
        )
        self.scaler, self.n, self.start, self.end = self.books.scaler, self.books.n, self.books.start, self.books.end
        self.episode_length = self.books.episode_length
        self.random_start = random_start
        self.observation_space, self.action_space = _spaces(self.books)
        self._all = np.arange(1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        options = options or {}
        books = self.books
        if "start" in options:
            first = int(options["start"])
            if not books.start - 1 <= first <= books.last_first:
                raise ValueError(f"start must be in [{books.start - 1}, {books.last_first}], got {first}")
        elif self.random_start:
            first = int(self.np_random.integers(books.start - 1, books.last_first + 1))
        else:
            first = books.start - 1
        books.reset(self._all, np.array([first]))
        return books.observe()[0], {"day": first}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        actions = np.asarray(action, dtype=np.float64).reshape(1, -1)
        rewards, figures = self.books.advance(actions, self._all)
        truncated = bool(self.books.steps[0] >= self.books.episode_steps)
        info: dict[str, Any] = {key: float(values[0]) for key, values in figures.items() if key != "daily"}
        info["daily_net_returns"] = figures["daily"][0].tolist()
        return self.books.observe()[0], float(rewards[0]), False, truncated, info


class VectorPortfolioEnv(VectorEnv):
    """`num_envs` portfolios of the same panel stepped together in numpy, each with its own random episode start
    (NEXT_STEP autoreset, what RLlib's SingleAgentEnvRunner expects: the step after an episode ends returns the new
    episode's first observation with reward 0 and ignores that action). Infos are empty (speed)."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012 - as in VectorEnv

    def __init__(
        self,
        closes: np.ndarray,
        *,
        index: np.ndarray,
        num_envs: int,
        days: tuple[int, int] | None = None,
        episode_length: int | None = 252,
        costs: CostModel | None = None,
        scaler: PortfolioScaler | None = None,
        reward: RewardConfig | None = None,
        action: ActionConfig | None = None,
    ) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        books = _Books(
            closes,
            index,
            num_envs,
            days,
            episode_length,
            costs,
            scaler,
            reward or RewardConfig(),
            action or ActionConfig(),
        )
        self.books = books
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = _spaces(self.books)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._done = np.zeros(num_envs, dtype=bool)
        self._rng = np.random.default_rng()
        self._no_terminations = np.zeros(num_envs, dtype=bool)

    def _firsts(self, count: int) -> np.ndarray:
        return self._rng.integers(self.books.start - 1, self.books.last_first + 1, size=count)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        everyone = np.arange(self.num_envs)
        self.books.reset(everyone, self._firsts(self.num_envs))
        self._done[:] = False
        return self.books.observe(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)
        books = self.books
        rewards = np.zeros(self.num_envs)
        restart = np.flatnonzero(self._done)
        live = np.flatnonzero(~self._done)
        if len(live):
            rewards[live], _ = books.advance(actions[live], live)
        if len(restart):
            books.reset(restart, self._firsts(len(restart)))
        truncated = books.steps >= books.episode_steps
        truncated[restart] = False
        self._done = truncated.copy()
        return books.observe(), rewards, self._no_terminations.copy(), truncated, {}
