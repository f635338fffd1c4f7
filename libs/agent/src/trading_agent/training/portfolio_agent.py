"""The portfolio agent as a walk-forward candidate: an ensemble of PPO policies (one per seed) trained on a window's
training days only, each exported to ONNX; on the test window the strategy averages the members' target weights.

A member's files live under `store/seed-<seed>/` when a store is given: its RLlib checkpoints (an interrupted run
resumes from the last one) and, once trained, `policy.onnx` and `member.json` (the config it was trained with, its
budget and validation figures). A member whose member.json matches the config is loaded, not retrained, so an
interrupted study resumes where it stopped.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from trading_features import PORTFOLIO_WARMUP_BARS

from trading_agent.envs import ActionConfig, PortfolioScaler, observation_rows, target_weights, within_band
from trading_agent.training.config import CONFIG_DIR, TrainConfig
from trading_agent.training.trainer import TrainingProgress, latest_checkpoint, market_from_closes, train

PORTFOLIO_WALKFORWARD_CONFIG = CONFIG_DIR / "walkforward_portfolio.yaml"
MEMBER_FILE = "member.json"


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class PortfolioAgentStrategy:
    """A `Strategy` (history, current_weights) -> target weights: the mean of the members' softmax target weights
    on the observation of the day (the portfolio features of the last PORTFOLIO_WARMUP_BARS days of closes and of
    the index, scaled with the training window's scaler, and the current weights with cash last), traded as the env
    trades it (`action`): a decision on the days whose index is a multiple of decision_days (the drifted weights are
    held on the others), and a target within the band of the drifted weights is not traded.

    `index` is the market index aligned with the close panel the backtest runs on: on day t (history = closes
    [: t + 1]) only index[: t + 1] is read."""

    def __init__(
        self,
        policies: list[Path],
        scaler: PortfolioScaler,
        index: np.ndarray,
        action: ActionConfig | None = None,
        **info: Any,
    ) -> None:
        if not policies:
            raise ValueError("the ensemble needs at least one member policy")
        self.sessions = [_session(path) for path in policies]
        self.scaler = scaler
        self.action = action or ActionConfig()
        self.index = np.asarray(index, dtype=np.float64)
        self.info = info

    def observation(self, history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        days = len(history)
        window = history[-PORTFOLIO_WARMUP_BARS:]
        rows, _ = observation_rows(window, self.index[days - len(window) : days], self.scaler)
        cash = max(0.0, 1.0 - float(np.sum(weights)))
        return np.concatenate([rows[-1], np.asarray(weights, dtype=np.float32), [cash]]).astype(np.float32)[None, :]

    def __call__(self, history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if len(history) < PORTFOLIO_WARMUP_BARS:
            return np.zeros(history.shape[1])
        if len(history) > len(self.index):
            raise ValueError(f"the index has {len(self.index)} days, the history {len(history)}: not aligned")
        holding = float(np.sum(weights)) > 0
        if holding and len(history) % self.action.decision_days:
            return weights
        obs = self.observation(history, weights)
        scale = self.action.scale
        mean = np.mean([target_weights(s.run(["action"], {"obs": obs})[0][0], scale) for s in self.sessions], axis=0)
        assets = mean[:-1] / max(1.0, float(mean[:-1].sum()))
        if holding and self.action.band > 0 and within_band(assets, weights, self.action.band):
            return weights
        return assets


def portfolio_walkforward_config() -> TrainConfig:
    return TrainConfig.from_file(PORTFOLIO_WALKFORWARD_CONFIG)


def _member_key(config: TrainConfig) -> dict[str, Any]:
    values = config.to_dict()
    values.pop("checkpoint_dir")
    return values


def train_member(
    train_closes: np.ndarray,
    train_index: np.ndarray,
    validate_closes: np.ndarray,
    validate_index: np.ndarray,
    config: TrainConfig,
    directory: Path,
    progress: Callable[[TrainingProgress], None] | None = None,
) -> dict[str, Any]:
    """Train (or load, or resume) one member in `directory`: returns member.json's content."""
    directory.mkdir(parents=True, exist_ok=True)
    member_file = directory / MEMBER_FILE
    key = _member_key(config)
    if member_file.is_file():
        saved = json.loads(member_file.read_text())
        if saved.get("config") == json.loads(json.dumps(key)) and (directory / "policy.onnx").is_file():
            return saved
    market = market_from_closes(train_closes, validate_closes, train_index, validate_index)
    checkpoints = directory / "checkpoints"
    run = config.replace(checkpoint_dir=str(checkpoints))
    resume = latest_checkpoint(checkpoints)
    result = train(run, progress=progress, market=market, resume=resume)
    shutil.copyfile(result.onnx_path, directory / "policy.onnx")
    record = {
        "config": key,
        "seed": config.seed,
        "iterations": result.iterations,
        "timesteps": result.timesteps,
        "train_seconds": result.elapsed_s,
        "resumed_from": result.resumed_from,
        "validation": result.validation,
        "scaler": market.scaler.to_dict(),
        "history": result.history,
    }
    member_file.write_text(json.dumps(record, indent=2))
    shutil.rmtree(checkpoints, ignore_errors=True)  # the ONNX graph and member.json are what the study needs
    return record


def portfolio_strategy_for_window(
    closes: np.ndarray,
    index: np.ndarray,
    train: tuple[int, int],
    validate: tuple[int, int],
    config: TrainConfig,
    seeds: list[int],
    store: Path | None = None,
    progress: Callable[[int, TrainingProgress], None] | None = None,
) -> PortfolioAgentStrategy:
    """Train one member per seed on closes[train] (copies of those rows and of the index's: nothing later), report
    each on closes[validate], and return the ensemble as a Strategy over the whole panel (`index` aligned with it).
    `progress(seed, event)` gets every finished iteration."""
    train_closes = np.array(closes[train[0] : train[1]], copy=True)
    validate_closes = np.array(closes[validate[0] : validate[1]], copy=True)
    train_index = np.array(index[train[0] : train[1]], copy=True)
    validate_index = np.array(index[validate[0] : validate[1]], copy=True)
    episode_length = min(config.episode_length, len(train_closes) - PORTFOLIO_WARMUP_BARS - 1)
    config = config.replace(episode_length=episode_length)
    scratch = None
    if store is None:
        scratch = Path(tempfile.mkdtemp(prefix="portfolio-agent-"))
    root = store if store is not None else scratch
    assert root is not None
    try:
        records = []
        for seed in seeds:
            report = (lambda event, seed=seed: progress(seed, event)) if progress is not None else None
            records.append(
                train_member(
                    train_closes,
                    train_index,
                    validate_closes,
                    validate_index,
                    config.replace(seed=seed),
                    root / f"seed-{seed}",
                    report,
                )
            )
        scaler = PortfolioScaler.from_dict(records[0]["scaler"])
        strategy = PortfolioAgentStrategy(
            [root / f"seed-{seed}" / "policy.onnx" for seed in seeds],
            scaler,
            index,
            config.action_config,
            members=[
                {k: r[k] for k in ("seed", "iterations", "timesteps", "train_seconds", "validation")} for r in records
            ],
            iterations=int(sum(r["iterations"] for r in records)),
            timesteps=int(sum(r["timesteps"] for r in records)),
            train_seconds=round(float(sum(r["train_seconds"] for r in records)), 1),
            algorithm=config.algorithm,
            seed=seeds[0],
            seeds=list(seeds),
            validation={
                "sharpe": float(np.mean([r["validation"]["sharpe"] for r in records])),
                "total_return": float(np.mean([r["validation"]["total_return"] for r in records])),
            },
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)  # the sessions hold the graphs in memory
    return strategy
