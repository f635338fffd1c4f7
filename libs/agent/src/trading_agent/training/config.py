"""`TrainConfig`: everything a training run depends on, loaded from YAML (libs/agent/configs/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from trading_agent.evaluation.backtest import CostModel

ALGORITHMS = ("PPO", "SAC")
ENVS = ("single", "portfolio")
CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
"""libs/agent/configs: default.yaml (a real, small run: minutes) and smoke.yaml (seconds, for tests)."""


def _settings(kind: Any, values: dict[str, Any], what: str) -> Any:
    """The dataclass `kind` of a mapping, an unknown key named."""
    known = set(kind.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} key(s) {unknown}; known: {sorted(known)}")
    return kind(**values)


@dataclass(frozen=True)
class TrainConfig:
    """A training run. `iterations` is the total: resuming from a checkpoint at iteration k runs iterations - k more.

    hyperparameters: keys of RLlib's `AlgorithmConfig.training()` for the algorithm (lr, gamma, num_epochs,
    train_batch_size_per_learner, ...), plus `model` (a mapping of `DefaultModelConfig` fields, e.g. fcnet_hiddens).
    costs: CostModel fields in basis points (commission_bps, half_spread_bps, slippage_bps).
    """

    name: str = "default"
    algorithm: str = "PPO"
    env: str = "single"
    symbols: tuple[str, ...] = ("AAPL", "JNJ", "KO", "XOM")
    source: str = "skfolio"
    train_start: str = "2005-01-01"
    train_end: str = "2016-12-31"
    validate_start: str = "2017-01-01"
    validate_end: str = "2018-12-31"
    episode_length: int = 252
    long_only: bool = False
    costs: dict[str, float] = field(default_factory=lambda: {"commission_bps": 0.5, "half_spread_bps": 2.0,
                                                             "slippage_bps": 3.0})  # fmt: skip
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    iterations: int = 20
    seed: int = 0
    checkpoint_dir: str = ".run/checkpoints/default"
    checkpoint_every: int = 10
    keep_checkpoints: int = 3
    num_env_runners: int = 0
    num_envs_per_env_runner: int = 8
    ray_address: str | None = None
    # the portfolio env's reward: RewardConfig fields (kind: log_return | differential_sharpe | drawdown_penalised,
    # scale, sharpe_eta, drawdown_penalty)
    reward: dict[str, Any] = field(default_factory=lambda: {"kind": "log_return"})
    # how the portfolio env's action becomes weights: ActionConfig fields (scale, band, decision_days)
    action: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        if self.env not in ENVS:
            raise ValueError(f"env must be one of {', '.join(ENVS)}, got {self.env!r}")
        if not self.symbols:
            raise ValueError("symbols must name at least one symbol")
        for key in ("episode_length", "iterations", "checkpoint_every", "keep_checkpoints", "num_envs_per_env_runner"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if not isinstance(self.num_env_runners, int) or self.num_env_runners < 0:
            raise ValueError(f"num_env_runners must be an integer >= 0, got {self.num_env_runners!r}")
        if not self.train_start < self.train_end < self.validate_start <= self.validate_end:
            raise ValueError(
                "need train_start < train_end < validate_start <= validate_end (ISO dates), got "
                f"{self.train_start} {self.train_end} {self.validate_start} {self.validate_end}"
            )
        self.cost_model  # noqa: B018 - validates the cost keys
        self.reward_config  # noqa: B018 - validates the reward keys
        self.action_config  # noqa: B018 - validates the action keys

    @property
    def cost_model(self) -> CostModel:
        known = {"commission_bps", "half_spread_bps", "slippage_bps"}
        unknown = sorted(set(self.costs) - known)
        if unknown:
            raise ValueError(f"unknown cost key(s) {unknown}; known: {sorted(known)}")
        if any(not isinstance(v, int | float) or v < 0 for v in self.costs.values()):
            raise ValueError(f"costs must be numbers >= 0 (basis points), got {self.costs}")
        return CostModel(**{k: float(v) for k, v in self.costs.items()})

    @property
    def reward_config(self) -> Any:
        from trading_agent.envs.portfolio import RewardConfig

        return _settings(RewardConfig, self.reward, "reward")

    @property
    def action_config(self) -> Any:
        from trading_agent.envs.portfolio import ActionConfig

        return _settings(ActionConfig, self.action, "action")

    @property
    def action_bounds(self) -> tuple[float, float]:
        return (0.0 if self.long_only else -1.0), 1.0

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["symbols"] = list(self.symbols)
        return values

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_mapping({**self.to_dict(), **changes})

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown train config key(s) {unknown}; known keys: {sorted(known)}")
        converted = dict(values)
        if "symbols" in converted:
            symbols = converted["symbols"]
            converted["symbols"] = (symbols,) if isinstance(symbols, str) else tuple(symbols)
        if "algorithm" in converted and isinstance(converted["algorithm"], str):
            converted["algorithm"] = converted["algorithm"].upper()
        for key in ("train_start", "train_end", "validate_start", "validate_end"):
            if key in converted and not isinstance(converted[key], str):
                converted[key] = str(converted[key])  # YAML reads 2016-12-31 as a date
        if "costs" in converted:
            converted["costs"] = {**cls().costs, **(converted["costs"] or {})}
        converted["hyperparameters"] = dict(converted.get("hyperparameters") or {})
        return cls(**converted)

    @classmethod
    def from_file(cls, path: Path | str) -> TrainConfig:
        """A YAML file of TrainConfig keys; omitted keys keep their defaults."""
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"cannot read the train config {path}: {error}") from error
        if not isinstance(values, dict):
            raise ValueError(f"the train config {path} must be a mapping of keys to values")
        values.setdefault("name", path.stem)
        return cls.from_mapping(values)
