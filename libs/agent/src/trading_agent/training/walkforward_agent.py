"""The RL agent as a walk-forward candidate: train on a window's training closes (tiny budget), validate on its
validation closes, and trade the exported ONNX policy as a backtest `Strategy`.

Each symbol gets a sleeve of `max_weight` (1/N by default) of equity: its weight is action * max_weight, the action
coming from the policy on that symbol's scaled features and its current (drifted) sleeve position - exactly what the
signal service's OnnxPolicy does live. Negative actions are floored at 0 (the backtest is long only, no leverage).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from trading_features import WARMUP_BARS, compute_batch

from trading_agent.training.config import CONFIG_DIR, TrainConfig
from trading_agent.training.trainer import TrainingProgress, market_from_closes, train

WALKFORWARD_CONFIG = CONFIG_DIR / "walkforward.yaml"


class AgentStrategy:
    """A `Strategy` (history, current_weights) -> target_weights over an exported single-asset policy."""

    def __init__(self, onnx_path: Path, scaler: Any, symbols: int, max_weight: float | None = None, **info: Any):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.scaler = scaler
        self.symbols = symbols
        self.max_weight = max_weight if max_weight is not None else 1.0 / symbols
        if self.max_weight * symbols > 1.0 + 1e-12:
            raise ValueError(f"max_weight {self.max_weight} * {symbols} symbols is leverage; use <= 1/{symbols}")
        self.info = info

    def __call__(self, history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if len(history) < WARMUP_BARS:
            return np.zeros(history.shape[1])
        window = history[-WARMUP_BARS:]
        features = np.stack([compute_batch(window[:, i])[-1] for i in range(history.shape[1])])
        obs = np.empty((history.shape[1], features.shape[1] + 1), dtype=np.float32)
        obs[:, :-1] = self.scaler.transform(features)
        obs[:, -1] = np.asarray(weights) / self.max_weight
        (actions,) = self.session.run(["action"], {"obs": obs})
        return np.clip(actions[:, 0].astype(np.float64), 0.0, 1.0) * self.max_weight


def walkforward_config() -> TrainConfig:
    return TrainConfig.from_file(WALKFORWARD_CONFIG)


def agent_strategy_for_window(
    train_closes: np.ndarray,
    validate_closes: np.ndarray,
    config: TrainConfig | None = None,
    progress: Callable[[TrainingProgress], None] | None = None,
) -> AgentStrategy:
    """Train the agent on `train_closes` (days, symbols) only, report it on `validate_closes` (the days right after),
    and return the trained policy as a Strategy for `run_backtest`. `strategy.info["validation"]` holds the
    validation figures, `strategy.info["iterations"]`, `["timesteps"]` the budget used. Reuses a running Ray
    session (start one before a loop of windows: each `ray.init` costs seconds). `progress` gets every finished
    training iteration (what `train` reports)."""
    config = config if config is not None else walkforward_config()
    market = market_from_closes(train_closes, validate_closes)
    episode_length = min(config.episode_length, market.train_end - WARMUP_BARS - 1)
    workdir = Path(tempfile.mkdtemp(prefix="walkforward-agent-"))
    try:
        run = config.replace(checkpoint_dir=str(workdir), episode_length=episode_length)
        result = train(run, progress=progress, market=market)
        kept = workdir / "policy.onnx"
        shutil.copyfile(result.onnx_path, kept)
        strategy = AgentStrategy(
            kept,
            result.scaler,
            market.closes.shape[1],
            validation=result.validation,
            iterations=result.iterations,
            timesteps=result.timesteps,
            train_seconds=result.elapsed_s,
            algorithm=config.algorithm,
            seed=config.seed,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # the session holds the graph in memory
    return strategy
