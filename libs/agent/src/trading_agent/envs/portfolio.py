"""N symbols and cash, rebalanced every day to the weights the agent's logits give."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from trading_features import FEATURE_NAMES

from trading_agent.envs.scaler import CLIP, Scaler, feature_panel
from trading_agent.envs.single_asset import check_days
from trading_agent.evaluation.backtest import CostModel

LOGIT_SCALE = 5.0
"""Logits = LOGIT_SCALE * action: an action in [-1, 1] per asset spans weight ratios up to e^10."""


class PortfolioEnv(gym.Env):
    """Trade N symbols plus cash over days [start, end) of a close panel (days, N).

    Action: N + 1 values in [-1, 1]; logits = 5 * action -> softmax -> target weights (symbols..., cash): long only,
    summing to 1.
    Observation: the scaled, clipped features of every symbol (N * 5, symbol-major) followed by the current weights
    (N + 1; the weights held into day t after they drifted with prices). Reward: log(1 + w . r - cost) with
    r the symbols' simple returns from t to t + 1 and cost = CostModel.cost(sum |w - drifted weights|) (cash is the
    other side of every trade and is not charged) - the same accounting as `run_backtest`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        closes: np.ndarray,
        *,
        days: tuple[int, int] | None = None,
        episode_length: int | None = 252,
        costs: CostModel | None = None,
        scaler: Scaler | None = None,
        random_start: bool = True,
    ) -> None:
        panel = np.asarray(closes, dtype=np.float64)
        if panel.ndim != 2 or panel.shape[1] < 1:
            raise ValueError(f"closes must be a (days, symbols) panel, got shape {panel.shape}")
        features = feature_panel(panel)  # (N, T, 5)
        self.start, self.end = check_days(days, len(panel))
        self.scaler = scaler if scaler is not None else Scaler.fit(features, slice(0, self.end))
        self.n = panel.shape[1]
        window = self.end - self.start
        self.episode_length = window if episode_length is None else int(episode_length)
        if not 1 <= self.episode_length <= window:
            raise ValueError(f"episode_length must be in [1, {window}] (the window's days), got {episode_length}")
        self.costs = costs if costs is not None else CostModel()
        self.random_start = random_start
        self._cost_rate = self.costs.total_bps / 10_000.0
        # (T, N * 5): one row per day, symbol-major, so an observation is one contiguous copy
        self._scaled = np.ascontiguousarray(self.scaler.transform(features).transpose(1, 0, 2)).reshape(len(panel), -1)
        self._simple_returns = panel[1:] / panel[:-1] - 1.0  # (T-1, N)
        self._growth = panel[1:] / panel[:-1]
        width = self.n * len(FEATURE_NAMES)
        self._width = width
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.n + 1,), dtype=np.float32)
        low = np.concatenate([np.full(width, -CLIP), np.zeros(self.n + 1)]).astype(np.float32)
        high = np.concatenate([np.full(width, CLIP), np.ones(self.n + 1)]).astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._t = self.start - 1
        self._steps = 0
        self._weights = self._cash_only()

    def _cash_only(self) -> np.ndarray:
        weights = np.zeros(self.n + 1)
        weights[-1] = 1.0
        return weights

    def _observe(self) -> np.ndarray:
        obs = np.empty(self._width + self.n + 1, dtype=np.float32)
        obs[: self._width] = self._scaled[self._t]
        obs[self._width :] = self._weights
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        options = options or {}
        last_first = self.end - 1 - self.episode_length
        if "start" in options:
            first = int(options["start"])
            if not self.start - 1 <= first <= last_first:
                raise ValueError(f"start must be in [{self.start - 1}, {last_first}], got {first}")
        elif self.random_start:
            first = int(self.np_random.integers(self.start - 1, last_first + 1))
        else:
            first = self.start - 1
        self._t = first
        self._steps = 0
        self._weights = self._cash_only()
        return self._observe(), {"day": first}

    @staticmethod
    def weights_of(logits: np.ndarray) -> np.ndarray:
        """Softmax of LOGIT_SCALE * the action clipped to [-1, 1]: the target weights, symbols then cash."""
        z = np.minimum(np.maximum(np.asarray(logits, dtype=np.float64), -1.0), 1.0)
        z *= LOGIT_SCALE
        z -= z.max()
        e = np.exp(z, out=z)
        e /= e.sum()
        return e

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        target = self.weights_of(action)
        t = self._t
        r = self._simple_returns[t]
        assets = target[: self.n]
        traded = float(np.abs(assets - self._weights[: self.n]).sum())
        cost = traded * self._cost_rate
        gross = float(assets @ r)
        net = gross - cost
        if not math.isfinite(net):
            raise ValueError(f"the action must be finite, got {action!r}")
        reward = math.log1p(net)
        # the weights drift with prices until the next decision; cash earns nothing
        assets *= self._growth[t]
        target /= 1.0 + gross
        self._weights = target
        self._t = t + 1
        self._steps += 1
        truncated = self._steps >= self.episode_length
        return self._observe(), reward, False, truncated, {"cost": cost, "net_return": net, "turnover": traded}
