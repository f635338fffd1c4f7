"""One symbol, one decision a day: the target position as a fraction of equity."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from trading_features import FEATURE_NAMES, WARMUP_BARS

from trading_agent.envs.scaler import CLIP, Scaler, feature_panel
from trading_agent.evaluation.backtest import CostModel

N_FEATURES = len(FEATURE_NAMES)
OBSERVATION_LAYOUT = (*FEATURE_NAMES, "position")


def check_days(days: tuple[int, int] | None, length: int) -> tuple[int, int]:
    """Days [start, end) whose returns are earned, as in `run_backtest`: the first decision is at the close of
    start - 1, so start - 1 must have warmed-up features."""
    start, end = days if days is not None else (WARMUP_BARS, length)
    if not WARMUP_BARS <= start < end <= length:
        raise ValueError(
            f"days must satisfy {WARMUP_BARS} <= start < end <= {length} (features need {WARMUP_BARS - 1} earlier "
            f"closes), got ({start}, {end})"
        )
    return int(start), int(end)


class SingleAssetEnv(gym.Env):
    """Trade one symbol of a close panel over days [start, end).

    At the close of day t the agent sees clip((features_t - mean) / std, -5, 5) (features from closes up to t only)
    and its current position, and chooses the position to hold until the close of t + 1 (the action, a fraction of
    equity in [-1, 1], or [0, 1] when long_only). Reward = position_t * log(close_{t+1} / close_t)
    - cost(|position_t - position_{t-1}|), with the evaluation's `CostModel`.

    An episode is `episode_length` decisions starting at a day drawn with the env's seeded RNG (`random_start`), or at
    the start of the window; with several symbols (closes of shape (days, K)) each episode draws one. `reset` options
    `{"symbol": k, "start": t}` pin both (used by the deterministic validation). Features are computed once, in the
    constructor; `step` is a handful of numpy scalar operations.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        closes: np.ndarray,
        *,
        days: tuple[int, int] | None = None,
        episode_length: int | None = 252,
        costs: CostModel | None = None,
        long_only: bool = False,
        scaler: Scaler | None = None,
        random_start: bool = True,
    ) -> None:
        panel = np.asarray(closes, dtype=np.float64)
        panel = panel[:, None] if panel.ndim == 1 else panel
        features = feature_panel(panel)
        self.start, self.end = check_days(days, len(panel))
        self.scaler = scaler if scaler is not None else Scaler.fit(features, slice(0, self.end))
        self.symbols = panel.shape[1]
        window = self.end - self.start
        self.episode_length = window if episode_length is None else int(episode_length)
        if not 1 <= self.episode_length <= window:
            raise ValueError(f"episode_length must be in [1, {window}] (the window's days), got {episode_length}")
        self.costs = costs if costs is not None else CostModel()
        self.long_only = bool(long_only)
        self.random_start = random_start
        self.low = 0.0 if long_only else -1.0
        self.high = 1.0
        self._cost_rate = self.costs.total_bps / 10_000.0
        self._scaled = self.scaler.transform(features)  # (K, T, 5) float32
        self._log_returns = np.diff(np.log(panel), axis=0).T.copy()  # (K, T-1): day t -> t+1
        self._simple_returns = np.expm1(self._log_returns)
        self.action_space = gym.spaces.Box(self.low, self.high, shape=(1,), dtype=np.float32)
        low = np.array([-CLIP] * N_FEATURES + [self.low], dtype=np.float32)
        high = np.array([CLIP] * N_FEATURES + [self.high], dtype=np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._symbol = 0
        self._t = self.start - 1
        self._steps = 0
        self._position = 0.0

    def _observe(self) -> np.ndarray:
        obs = np.empty(N_FEATURES + 1, dtype=np.float32)
        obs[:N_FEATURES] = self._scaled[self._symbol, self._t]
        obs[N_FEATURES] = self._position
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        options = options or {}
        last_first = self.end - 1 - self.episode_length  # the latest first decision that fits the window
        if "start" in options:
            first = int(options["start"])
            if not self.start - 1 <= first <= last_first:
                raise ValueError(f"start must be in [{self.start - 1}, {last_first}], got {first}")
        elif self.random_start:
            first = int(self.np_random.integers(self.start - 1, last_first + 1))
        else:
            first = self.start - 1
        if "symbol" in options:
            self._symbol = int(options["symbol"])
        else:
            self._symbol = int(self.np_random.integers(self.symbols)) if self.symbols > 1 else 0
        self._t = first
        self._steps = 0
        self._position = 0.0
        return self._observe(), {"symbol": self._symbol, "day": first}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        target = float(action[0])
        if not math.isfinite(target):
            raise ValueError(f"the action must be finite, got {action!r}")
        target = min(self.high, max(self.low, target))
        t = self._t
        traded = abs(target - self._position)
        cost = traded * self._cost_rate
        reward = target * float(self._log_returns[self._symbol, t]) - cost
        net = target * float(self._simple_returns[self._symbol, t]) - cost
        self._position = target
        self._t = t + 1
        self._steps += 1
        truncated = self._steps >= self.episode_length
        return self._observe(), reward, False, truncated, {"position": target, "cost": cost, "net_return": net}
