"""Train the agent with Ray RLlib (new API stack), checkpoint and resume, evaluate on the validation window, export
the deterministic policy to ONNX, and register it in the model registry.

Locally `train` starts `ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)` (about 4 s here) unless a
Ray session is already up, which it reuses (tests share one). With `ray_address` set ("auto" on a KubeRay head pod,
or "ray://host:10001") the same code trains on the cluster; the trading_* packages must be installed on its nodes.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from trading_datasets import close_panel
from trading_features import FEATURE_NAMES, FEATURE_VERSION, PORTFOLIO_WARMUP_BARS, WARMUP_BARS

from trading_agent.envs import (
    CLIP,
    OBSERVATION_LAYOUT,
    PortfolioEnv,
    PortfolioScaler,
    Scaler,
    SingleAssetEnv,
    feature_panel,
    index_closes,
    make_env,
    observation_rows,
)
from trading_agent.evaluation import metrics
from trading_agent.training.config import TrainConfig
from trading_agent.training.export import DeterministicPolicy, export_onnx

ENV_NAME = "trading-agent-env"
METADATA_FILE = "trading_agent.json"
CHECKPOINT_PATTERN = re.compile(r"^iteration-(\d+)$")
POLICY_FILE = "policy.onnx"
SPECIAL_HYPERPARAMETERS = ("model", "env_runners", "reporting")
START_ATTEMPTS = 5
"""A local Ray node that does not come up in time (its agents start slowly on a loaded machine) is retried."""


@dataclass(frozen=True)
class MarketData:
    """The close panel from train_start to validate_end and the index bounds of its windows."""

    dates: np.ndarray
    closes: np.ndarray  # (days, symbols)
    train_end: int  # days [0, train_end) are the training window
    validate: tuple[int, int]  # returns of days [start, end) are the validation window (decisions from start - 1)
    scaler: Scaler | PortfolioScaler
    index: np.ndarray | None = None  # the market index on the same days (the portfolio env's)

    @property
    def warmup(self) -> int:
        return PORTFOLIO_WARMUP_BARS if self.index is not None else WARMUP_BARS


def fit_scaler(closes: np.ndarray, index: np.ndarray | None) -> Scaler | PortfolioScaler:
    """The single-asset env's scaler (index None) or the portfolio env's, fitted on these (training) rows only."""
    if index is None:
        return Scaler.fit(feature_panel(closes))
    return observation_rows(closes, index)[1]


def load_market(config: TrainConfig) -> MarketData:
    """Real daily closes via trading_datasets (a symbol the source lacks raises, naming it); the scaler is fitted on
    the training window's features only. Runs before Ray starts, so bad data stops a run at once."""
    from trading_datasets.daily import DatasetError

    try:
        dates, closes = close_panel(list(config.symbols), config.source, config.train_start, config.validate_end)
    except DatasetError as error:
        raise ValueError(f"symbols/source: {error}") from error
    train_end = int(np.searchsorted(dates, np.datetime64(config.train_end, "D"), side="right"))
    validate = (
        int(np.searchsorted(dates, np.datetime64(config.validate_start, "D"), side="left")),
        int(np.searchsorted(dates, np.datetime64(config.validate_end, "D"), side="right")),
    )
    index = index_closes(dates) if config.env == "portfolio" else None
    warmup = PORTFOLIO_WARMUP_BARS if index is not None else WARMUP_BARS
    if train_end - warmup < config.episode_length + 1:
        raise ValueError(
            f"the training window train_start..train_end = {config.train_start}..{config.train_end} has {train_end} "
            f"days of data: too short for {warmup} warm-up days and episodes of {config.episode_length} days"
        )
    if validate[1] - validate[0] < 2:
        raise ValueError(
            f"the validation window validate_start..validate_end = {config.validate_start}..{config.validate_end} "
            f"has {max(validate[1] - validate[0], 0)} days of data (need at least 2)"
        )
    scaler = fit_scaler(closes[:train_end], None if index is None else index[:train_end])
    return MarketData(dates, closes, train_end, validate, scaler, index)


def market_from_closes(
    train_closes: np.ndarray,
    validate_closes: np.ndarray,
    train_index: np.ndarray | None = None,
    validate_index: np.ndarray | None = None,
) -> MarketData:
    """MarketData of two consecutive close panels (days, symbols) instead of dates: the walk-forward's windows. With
    the market index of both (the portfolio env), its scaler is the portfolio env's."""
    train_part = np.asarray(train_closes, dtype=np.float64).reshape(len(train_closes), -1)
    validate_part = np.asarray(validate_closes, dtype=np.float64).reshape(len(validate_closes), -1)
    if train_part.shape[1] != validate_part.shape[1]:
        raise ValueError("the train and validate panels must have the same symbols (columns)")
    warmup = WARMUP_BARS if train_index is None else PORTFOLIO_WARMUP_BARS
    if len(train_part) <= warmup + 1 or len(validate_part) < 2:
        raise ValueError(f"need more than {warmup + 1} training days and at least 2 validation days")
    closes = np.vstack([train_part, validate_part])
    train_end = len(train_part)
    index = None
    if train_index is not None:
        if validate_index is None:
            raise ValueError("the validation window's index is missing")
        index = np.concatenate([np.asarray(train_index, dtype=np.float64), np.asarray(validate_index, np.float64)])
        if len(index) != len(closes):
            raise ValueError(f"the index has {len(index)} days, the closes {len(closes)}")
    scaler = fit_scaler(train_part, None if index is None else index[:train_end])
    return MarketData(np.arange(len(closes)), closes, train_end, (train_end, len(closes)), scaler, index)


def env_config(config: TrainConfig, market: MarketData) -> dict[str, Any]:
    """What the training env runners build their environments from: only the training window's closes."""
    values: dict[str, Any] = {
        "kind": config.env,
        "closes": market.closes[: market.train_end],
        "days": [market.warmup, market.train_end],
        "episode_length": config.episode_length,
        "costs": dict(config.costs),
        "scaler": market.scaler.to_dict(),
        "long_only": config.long_only,
        "random_start": True,
    }
    if config.env == "portfolio":
        if market.index is None:
            raise ValueError("the portfolio env needs the market index (MarketData.index)")
        values["index"] = market.index[: market.train_end]
        values["reward"] = dict(config.reward)
        values["action"] = dict(config.action)
    return values


def build_algorithm_config(config: TrainConfig, market: MarketData) -> Any:
    """The RLlib AlgorithmConfig (new API stack) of a TrainConfig."""
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    if config.algorithm == "PPO":
        from ray.rllib.algorithms.ppo import PPOConfig

        algorithm_config: Any = PPOConfig()
    else:
        from ray.rllib.algorithms.sac import SACConfig

        algorithm_config = SACConfig()
    hyperparameters = dict(config.hyperparameters)
    model = dict(hyperparameters.pop("model", None) or {})
    runner_options = dict(hyperparameters.pop("env_runners", None) or {})
    reporting = dict(hyperparameters.pop("reporting", None) or {})
    try:
        model_config = DefaultModelConfig(**model)
    except TypeError as error:
        raise ValueError(f"bad hyperparameters.model {model}: {error}") from error
    sac = config.algorithm == "SAC"
    algorithm_config = algorithm_config.environment(
        ENV_NAME,
        env_config=env_config(config, market),
        # PPO's Gaussian samples are clipped to the bounds; SAC's squashed samples in [-1, 1] are rescaled to them
        normalize_actions=sac,
        clip_actions=not sac,
    )
    if config.env == "portfolio":
        # the env creator returns a VectorPortfolioEnv of num_envs portfolios stepped in numpy, not N gym.Envs
        runner_options.setdefault("gym_env_vectorize_mode", "vector_entry_point")
    try:
        algorithm_config = (
            algorithm_config.env_runners(
                num_env_runners=config.num_env_runners,
                num_envs_per_env_runner=config.num_envs_per_env_runner,
                **runner_options,
            )
            .learners(num_learners=0)
            .training(**hyperparameters)
            .reporting(**reporting)
        )
    except TypeError as error:
        raise ValueError(f"bad {config.algorithm} hyperparameters {config.hyperparameters}: {error}") from error
    algorithm_config = algorithm_config.rl_module(model_config=model_config)
    return algorithm_config.debugging(seed=config.seed, log_level="ERROR", log_sys_usage=False)


@dataclass(frozen=True)
class TrainingProgress:
    """One finished training iteration, as the progress callback sees it."""

    iteration: int
    iterations: int
    episode_return_mean: float
    timesteps: int
    elapsed_s: float
    checkpoint: str | None = None


@dataclass
class TrainResult:
    config: TrainConfig
    checkpoint: Path
    iterations: int
    timesteps: int
    elapsed_s: float
    history: list[dict[str, Any]]
    validation: dict[str, Any]
    scaler: Scaler
    market: MarketData
    onnx_path: Path
    parity_error: float
    resumed_from: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.validation


def ensure_ray(config: TrainConfig) -> bool:
    """Start Ray unless it is up already; True when this call started it (and train() shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    address = config.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
        return True
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            ray.init(
                num_cpus=max(2, config.num_env_runners + 1),
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            return True
        except Exception as error:  # Ray raises a bare Exception when its node does not come up
            if "timed out during startup" not in str(error) or attempt == START_ATTEMPTS:
                raise
            ray.shutdown()
            time.sleep(5.0 * attempt)
    return True


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # the networks are tiny: one intra-op thread is faster than two, and does not thrash on a busy 2-core machine
    torch.set_num_threads(1)


def _metadata(path: Path) -> dict[str, Any]:
    file = Path(path) / METADATA_FILE
    return json.loads(file.read_text()) if file.is_file() else {}


def _check_resume(config: TrainConfig, resume: Path) -> None:
    if not Path(resume).is_dir():
        raise FileNotFoundError(f"no checkpoint directory at {resume}")
    saved = _metadata(resume).get("config")
    if not saved:
        return  # an RLlib checkpoint written by other code: RLlib checks the rest
    for key in ("algorithm", "env", "symbols", "long_only"):
        mine = list(config.symbols) if key == "symbols" else getattr(config, key)
        if saved.get(key) != mine:
            raise ValueError(
                f"cannot resume: the checkpoint {resume} was trained with {key}={saved.get(key)!r}, "
                f"this config has {key}={mine!r}"
            )


def _save(algo: Any, config: TrainConfig, market: MarketData, history: list[dict[str, Any]]) -> Path:
    root = Path(config.checkpoint_dir)
    path = (root / f"iteration-{algo.iteration:05d}").resolve()
    if path.exists():
        shutil.rmtree(path)
    algo.save_to_path(str(path))
    (path / METADATA_FILE).write_text(
        json.dumps(
            {
                "config": config.to_dict(),
                "scaler": market.scaler.to_dict(),
                "iteration": algo.iteration,
                "history": history,
            },
            indent=2,
        )
    )
    checkpoints = sorted(
        (int(m.group(1)), p) for p in root.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name)) and p.is_dir()
    )
    for _, old in checkpoints[: -config.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def latest_checkpoint(root: Path | str) -> Path | None:
    """The newest `iteration-NNNNN` checkpoint under `root` that was completely written, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := CHECKPOINT_PATTERN.match(p.name)) and (p / METADATA_FILE).is_file()
    )
    return found[-1][1] if found else None


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def train(
    config: TrainConfig,
    progress: Callable[[TrainingProgress], None] | None = None,
    resume: Path | str | None = None,
    market: MarketData | None = None,
) -> TrainResult:
    """Train to `config.iterations` (counting the checkpoint's when resuming), checkpoint every `checkpoint_every`
    iterations and at the end, evaluate the deterministic policy on the validation window, export it to ONNX
    (`<checkpoint>/policy.onnx`, parity-checked against torch). Register it with `register_model`.

    `market` replaces the data the config names (the walk-forward plug-in passes its windows' closes)."""
    from ray.tune.registry import register_env

    if market is None:
        market = load_market(config)
    elif market.train_end - market.warmup < config.episode_length + 1:
        raise ValueError(f"{market.train_end} training days are too few for episodes of {config.episode_length} days")
    if resume is not None:
        resume = Path(resume).resolve()
        _check_resume(config, resume)
    started_ray = ensure_ray(config)
    try:
        _seed_everything(config.seed)
        register_env(ENV_NAME, make_env)
        algo = build_algorithm_config(config, market).build_algo()
        try:
            history: list[dict[str, Any]] = []
            if resume is not None:
                algo.restore_from_path(str(resume))
                history = list(_metadata(resume).get("history", []))
            started = time.monotonic()
            timesteps = int(history[-1]["timesteps"]) if history else 0
            checkpoint: Path | None = None
            while algo.iteration < config.iterations:
                result = algo.train()
                runners = result.get("env_runners", {})
                timesteps = int(_number(runners.get("num_env_steps_sampled_lifetime", timesteps)))
                record = {
                    "iteration": algo.iteration,
                    "episode_return_mean": _number(runners.get("episode_return_mean")),
                    "timesteps": timesteps,
                    "elapsed_s": round(time.monotonic() - started, 3),
                }
                history.append(record)
                checkpoint = None
                if algo.iteration % config.checkpoint_every == 0 or algo.iteration >= config.iterations:
                    checkpoint = _save(algo, config, market, history)
                if progress is not None:
                    progress(
                        TrainingProgress(
                            record["iteration"],
                            config.iterations,
                            record["episode_return_mean"],
                            timesteps,
                            record["elapsed_s"],
                            str(checkpoint) if checkpoint else None,
                        )
                    )
            if checkpoint is None:  # resumed at or past the target: nothing new to train, keep a checkpoint anyway
                checkpoint = _save(algo, config, market, history)
            elapsed = time.monotonic() - started
            low, high = _action_bounds(config, market)
            policy = DeterministicPolicy(algo.get_module(), config.algorithm, low, high)
            validation = evaluate(policy, config, market)
            onnx_path = checkpoint / POLICY_FILE
            parity = export_onnx(policy, onnx_path, seed=config.seed)
        finally:
            algo.stop()
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return TrainResult(
        config=config,
        checkpoint=checkpoint,
        iterations=algo.iteration,
        timesteps=timesteps,
        elapsed_s=round(elapsed, 3),
        history=history,
        validation=validation,
        scaler=market.scaler,
        market=market,
        onnx_path=onnx_path,
        parity_error=parity,
        resumed_from=str(resume) if resume is not None else None,
    )


def _action_bounds(config: TrainConfig, market: MarketData) -> tuple[np.ndarray, np.ndarray]:
    if config.env == "portfolio":
        width = market.closes.shape[1] + 1
        return np.full(width, -1.0), np.full(width, 1.0)
    low, high = config.action_bounds
    return np.array([low]), np.array([high])


def validation_env(config: TrainConfig, market: MarketData) -> SingleAssetEnv | PortfolioEnv:
    """One pass over the validation window from its first day (the closes before it are warm-up history only)."""
    common: dict[str, Any] = {
        "days": market.validate,
        "episode_length": None,
        "costs": config.cost_model,
        "scaler": market.scaler,
        "random_start": False,
    }
    if config.env == "portfolio":
        return PortfolioEnv(
            market.closes, index=market.index, reward=config.reward_config, action=config.action_config, **common
        )
    return SingleAssetEnv(market.closes, long_only=config.long_only, **common)


def _summary(rewards: list[float], returns: list[float], costs: list[float]) -> dict[str, float]:
    values = np.asarray(returns)
    return {
        "total_return": round(metrics.total_return(values), 6),
        "sharpe": round(metrics.sharpe(values), 4),
        "max_drawdown": round(metrics.max_drawdown(values), 6),
        "mean_reward_per_step": float(np.mean(rewards)),
        "cost_paid": round(float(np.sum(costs)), 6),
        "steps": len(values),
    }


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray] | DeterministicPolicy, config: TrainConfig, market: MarketData
) -> dict[str, Any]:
    """Run the deterministic policy once over the validation window (every symbol, for the single-asset env) with
    the training costs: total return, annualised Sharpe, max drawdown of the daily net returns, and the mean reward
    per step; buy-and-hold of the same days for scale."""
    act = policy.act if isinstance(policy, DeterministicPolicy) else policy
    env = validation_env(config, market)
    start, end = market.validate
    span = [str(market.dates[start]), str(market.dates[end - 1])]
    if isinstance(env, PortfolioEnv):
        runs: dict[str, dict[str, int]] = {"portfolio": {}}
    else:
        count = market.closes.shape[1]
        names = list(config.symbols) if len(config.symbols) == count else [f"column_{k}" for k in range(count)]
        runs = {symbol: {"symbol": k} for k, symbol in enumerate(names)}
    per_run: dict[str, dict[str, float]] = {}
    all_rewards: list[float] = []
    for label, options in runs.items():
        obs, _ = env.reset(options=options)
        rewards, returns, costs, positions = [], [], [], []
        truncated = False
        while not truncated:
            action = np.asarray(act(obs[None, :]))[0]
            obs, reward, _, truncated, info = env.step(action)
            rewards.append(reward)
            returns.extend(info.get("daily_net_returns", [info["net_return"]]))
            costs.append(info["cost"])
            positions.append(float(np.abs(action).mean()) if isinstance(env, PortfolioEnv) else info["position"])
        summary = _summary(rewards, returns, costs)
        summary["mean_abs_position"] = round(float(np.mean(np.abs(positions))), 6)
        if isinstance(env, SingleAssetEnv):
            k = options["symbol"]
            summary["buy_and_hold_total_return"] = round(
                float(market.closes[end - 1, k] / market.closes[start - 1, k] - 1.0), 6
            )
        per_run[label] = summary
        all_rewards.extend(rewards)
    figures = {
        "window": span,
        "total_return": round(float(np.mean([r["total_return"] for r in per_run.values()])), 6),
        "sharpe": round(float(np.mean([r["sharpe"] for r in per_run.values()])), 4),
        "mean_reward_per_step": float(np.mean(all_rewards)),
        "steps": len(all_rewards),
    }
    if isinstance(env, SingleAssetEnv):
        figures["buy_and_hold_total_return"] = round(
            float(np.mean([r["buy_and_hold_total_return"] for r in per_run.values()])), 6
        )
        figures["per_symbol"] = per_run
    else:
        figures.update({k: v for k, v in per_run["portfolio"].items() if k not in figures})
    return figures


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def build_manifest(result: TrainResult) -> dict[str, Any]:
    """The registry manifest of a trained single-asset policy: everything needed to reproduce and to serve it."""
    config, market = result.config, result.market
    low, high = config.action_bounds
    validation = {k: v for k, v in result.validation.items()}
    return {
        "algorithm": config.algorithm,
        "env": config.env,
        "hyperparameters": config.hyperparameters,
        "seed": config.seed,
        "data": {
            "source": config.source,
            "symbols": list(config.symbols),
            "train_start": config.train_start,
            "train_end": config.train_end,
            "validate_start": config.validate_start,
            "validate_end": config.validate_end,
            "train_days": [str(market.dates[0]), str(market.dates[market.train_end - 1])],
            "validate_days": result.validation["window"],
        },
        "feature_names": list(FEATURE_NAMES),
        "feature_version": FEATURE_VERSION,
        "observation": {"layout": list(OBSERVATION_LAYOUT), "scaler": result.scaler.to_dict(), "clip": CLIP},
        "action": {"low": low, "high": high, "long_only": config.long_only},
        "costs_bps": dict(config.costs),
        "episode_length": config.episode_length,
        "metrics": validation,
        "expected_reward_per_step": result.validation["mean_reward_per_step"],
        "training": {
            "iterations": result.iterations,
            "timesteps": result.timesteps,
            "elapsed_s": result.elapsed_s,
            "checkpoint": str(result.checkpoint),
            "resumed_from": result.resumed_from,
        },
        "onnx": {"input": "obs", "output": "action", "parity_max_abs_error": result.parity_error},
        "code_version": code_version(),
    }


def register_model(result: TrainResult, registry_root: Path | str, name: str, promote: bool = False) -> Any:
    """Register the exported policy (single-asset env only: what the signal service serves) with its manifest;
    promote it to production when asked. Returns the registry's ModelVersion."""
    from trading_policy.registry import ModelRegistry

    if result.config.env != "single":
        raise ValueError(
            "only single-asset policies are registered for serving; the portfolio policy stays a checkpoint"
        )
    registry = ModelRegistry(Path(registry_root))
    training_file = result.checkpoint / "training.json"
    training_file.write_text(json.dumps({"config": result.config.to_dict(), "history": result.history}, indent=2))
    version = registry.register(name, result.onnx_path, build_manifest(result), extra_files=[training_file])
    if promote:
        registry.promote(name, version.version, "production")
    return version
