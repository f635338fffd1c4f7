"""Gymnasium environments of the RL agent over real daily closes, with the evaluation's cost model.

- `SingleAssetEnv`: one symbol; action = target position in [-1, 1] (or [0, 1] long only); observation = the 5
  scaled trading_features + the current position; reward = position * log return - costs.
- `PortfolioEnv`: N symbols + cash; action = N + 1 logits -> softmax target weights; observation = the
  trading_features.portfolio features of every symbol and of the S&P 500 index + the current weights; reward: net log
  return, differential Sharpe ratio or drawdown-penalised return, after the CostModel's costs.
- `VectorPortfolioEnv`: many such portfolios stepped together in numpy (a gymnasium VectorEnv, what RLlib steps).
- `Scaler`: feature mean/std fitted on the training window only; saved with the model (manifest "observation").

`make_env(env_config)` builds either from a plain dict: what RLlib's env runners call (training/trainer.py).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from trading_agent.envs.market import index_closes
from trading_agent.envs.portfolio import (
    REWARDS,
    ActionConfig,
    PortfolioEnv,
    PortfolioScaler,
    RewardConfig,
    VectorPortfolioEnv,
    observation_rows,
    target_weights,
    within_band,
)
from trading_agent.envs.scaler import CLIP, Scaler, feature_panel
from trading_agent.envs.single_asset import OBSERVATION_LAYOUT, SingleAssetEnv
from trading_agent.evaluation.backtest import CostModel

ENV_KINDS = ("single", "portfolio")


def make_env(env_config: dict[str, Any]) -> gym.Env:
    """{"kind": "single"|"portfolio", "closes": array, "days": [start, end], "episode_length": int|None,
    "costs": {commission_bps, half_spread_bps, slippage_bps}, "scaler": Scaler.to_dict(), "long_only": bool,
    "random_start": bool} -> the environment. The portfolio kind also reads "index" (the market index, one close per
    day), "reward" (RewardConfig fields), "action" (ActionConfig fields) and, when RLlib asks for a vector env,
    "num_envs": it then returns a VectorPortfolioEnv of that many portfolios."""
    kind = env_config.get("kind", "single")
    common: dict[str, Any] = {
        "days": tuple(env_config["days"]) if env_config.get("days") is not None else None,
        "episode_length": env_config.get("episode_length", 252),
        "costs": CostModel(**env_config["costs"]) if env_config.get("costs") else None,
        "random_start": env_config.get("random_start", True),
    }
    closes = np.asarray(env_config["closes"], dtype=np.float64)
    if kind == "single":
        scaler = Scaler.from_dict(env_config["scaler"]) if env_config.get("scaler") else None
        return SingleAssetEnv(closes, long_only=bool(env_config.get("long_only", False)), scaler=scaler, **common)
    if kind == "portfolio":
        scaler = PortfolioScaler.from_dict(env_config["scaler"]) if env_config.get("scaler") else None
        reward = RewardConfig(**(env_config.get("reward") or {}))
        action = ActionConfig(**(env_config.get("action") or {}))
        index = np.asarray(env_config["index"], dtype=np.float64)
        if "num_envs" in env_config:
            del common["random_start"]
            return VectorPortfolioEnv(
                closes,
                index=index,
                num_envs=int(env_config["num_envs"]),
                scaler=scaler,
                reward=reward,
                action=action,
                **common,
            )
        return PortfolioEnv(closes, index=index, scaler=scaler, reward=reward, action=action, **common)
    raise ValueError(f"unknown env kind {kind!r}; kinds: {', '.join(ENV_KINDS)}")


__all__ = [
    "CLIP",
    "ENV_KINDS",
    "OBSERVATION_LAYOUT",
    "REWARDS",
    "ActionConfig",
    "PortfolioEnv",
    "PortfolioScaler",
    "RewardConfig",
    "Scaler",
    "SingleAssetEnv",
    "VectorPortfolioEnv",
    "feature_panel",
    "index_closes",
    "make_env",
    "observation_rows",
    "target_weights",
    "within_band",
]
