"""Ray Tune search of the portfolio agent's hyperparameters against a validation window only.

`tune_on_validation` trains every configuration of a grid (`space`: dotted TrainConfig keys -> values, e.g.
"reward.kind", "hyperparameters.lr") on one walk-forward window's training days and scores it by the deterministic
policy's Sharpe over that window's validation days (the env pass `train` reports). It is handed only the rows up to
the validation window's end, and `check_tuning_window` refuses a tuning window whose validation days reach the
first test day of the windows the tuned configuration will trade: the test windows are never tuned on.
"""

from __future__ import annotations

import copy
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from trading_agent.training.config import TrainConfig


def check_tuning_window(validate_end: int, first_test_start: int) -> None:
    """Raise unless the tuning data (rows before `validate_end`) ends before the first traded test day."""
    if validate_end > first_test_start:
        raise ValueError(
            f"tuning would see test data: its validation window ends at row {validate_end}, the first test window "
            f"starts at row {first_test_start}; tune on an earlier window"
        )


def apply(config: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    """The config with dotted keys replaced ("hyperparameters.lr": 1e-4, "reward.kind": "differential_sharpe")."""
    values = copy.deepcopy(config.to_dict())
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        target = values
        for part in path:
            if not isinstance(target.get(part), dict):
                raise ValueError(f"tune space key {dotted!r}: {part!r} is not a mapping of the train config")
            target = target[part]
        if not path and last not in values:
            raise ValueError(f"tune space key {dotted!r} is not a train config key")
        target[last] = value
    return TrainConfig.from_mapping(values)


def grid(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(space[k] for k in keys))]


def tune_on_validation(
    closes: np.ndarray,
    index: np.ndarray,
    train: tuple[int, int],
    validate: tuple[int, int],
    base: TrainConfig,
    space: dict[str, list[Any]],
    storage: Path,
) -> dict[str, Any]:
    """Run every grid point as a Ray Tune trial (one at a time on a small machine); returns {"best": changes,
    "trials": [{"changes", "validate_sharpe", "validate_total_return", "timesteps", "seconds"}]}. Only
    closes[: validate[1]] and index[: validate[1]] are used."""
    from ray import tune

    from trading_agent.training.trainer import market_from_closes
    from trading_agent.training.trainer import train as train_one

    points = grid(space)
    for point in points:
        apply(base, point)  # bad keys stop the search before any trial starts
    train_closes = np.array(closes[train[0] : train[1]], copy=True)
    validate_closes = np.array(closes[validate[0] : validate[1]], copy=True)
    train_index = np.array(index[train[0] : train[1]], copy=True)
    validate_index = np.array(index[validate[0] : validate[1]], copy=True)
    storage = Path(storage).resolve()

    def trial(params: dict[str, Any]) -> dict[str, Any]:
        changes = points[int(params["point"])]
        config = apply(base, changes).replace(checkpoint_dir=str(storage / f"trial-{params['point']}"))
        market = market_from_closes(train_closes, validate_closes, train_index, validate_index)
        started = time.monotonic()
        result = train_one(config, market=market)
        return {
            "validate_sharpe": float(result.validation["sharpe"]),
            "validate_total_return": float(result.validation["total_return"]),
            "timesteps": int(result.timesteps),
            "seconds": round(time.monotonic() - started, 1),
        }

    tuner = tune.Tuner(
        tune.with_resources(trial, {"cpu": 1}),
        param_space={"point": tune.grid_search(list(range(len(points))))},
        tune_config=tune.TuneConfig(metric="validate_sharpe", mode="max", max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(storage / "tune"), name="validation", verbose=0),
    )
    results = tuner.fit()
    trials = []
    for number in range(len(results)):
        outcome = results[number]
        if outcome.error is not None:
            raise RuntimeError(f"tune trial {outcome.config} failed: {outcome.error}")
        figures, params = dict(outcome.metrics or {}), dict(outcome.config or {})
        trials.append(
            {
                "changes": points[int(params["point"])],
                **{k: figures[k] for k in ("validate_sharpe", "validate_total_return", "timesteps", "seconds")},
            }
        )
    trials.sort(key=lambda t: -t["validate_sharpe"])
    return {"best": trials[0]["changes"], "trials": trials}
