"""The data periods a model version has seen, from its manifest, and whether a replay is out of sample for it.

A policy has seen the days of its training window and of its validation window (the validation window chose the
version: early stopping, hyper-parameters, promotion). A replay of market data is out of sample for it only if it
starts after the last of those days. The manifest says the windows under `data` (`train_days` / `validate_days`: the
first and last trading day used; `train_start` / `train_end` and `validate_start` / `validate_end` as configured),
and, for a bundled version, the replay it was bundled for under `replay` (`source`, `symbols`, `start`, `end`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from trading_policy.registry import STAGE_NAMES, ModelRegistry, RegistryError


@dataclass(frozen=True)
class DataPeriods:
    train: tuple[str, str]  # first and last day of the training data (ISO dates)
    validate: tuple[str, str] | None  # the validation window, if the manifest has one
    replay: dict[str, Any] | None  # the replay a bundled version was made for (source, symbols, start, end)

    @property
    def seen_until(self) -> str:
        """The last day of data the version has seen (training or validation)."""
        return max(self.train[1], self.validate[1]) if self.validate else self.train[1]

    def out_of_sample(self, replay_start: str) -> bool:
        return _date("replay start", replay_start) > _date("seen_until", self.seen_until)

    def describe(self, replay: bool = True) -> str:
        text = f"trained {self.train[0]}..{self.train[1]}"
        if self.validate:
            text += f", validated {self.validate[0]}..{self.validate[1]}"
        if replay and self.replay:
            text += f", bundled for the replay {self.replay.get('start')}..{self.replay.get('end')}"
        return text


def _date(name: str, value: Any) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise RegistryError(f"manifest {name} {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _window(data: dict[str, Any], kind: str) -> tuple[str, str] | None:
    days = data.get(f"{kind}_days")
    if isinstance(days, list | tuple) and len(days) == 2:
        first, last = str(days[0]), str(days[1])
    elif data.get(f"{kind}_start") or data.get(f"{kind}_end"):
        first, last = str(data.get(f"{kind}_start")), str(data.get(f"{kind}_end"))
    else:
        return None
    if _date(f"data.{kind}_days[0]", first) > _date(f"data.{kind}_days[1]", last):
        raise RegistryError(f"manifest data.{kind} window ends ({last}) before it starts ({first})")
    return first, last


def data_periods(manifest: dict[str, Any]) -> DataPeriods:
    """The periods of a manifest; a manifest without a training window is refused, naming the key."""
    data = manifest.get("data")
    if not isinstance(data, dict):
        raise RegistryError("manifest has no `data` block: the training window (data.train_start, data.train_end)")
    train = _window(data, "train")
    if train is None:
        raise RegistryError("manifest lacks data.train_start / data.train_end: the training window is unknown")
    replay = manifest.get("replay")
    return DataPeriods(train, _window(data, "validate"), replay if isinstance(replay, dict) else None)


def in_sample_message(label: str, periods: DataPeriods, replay_start: str) -> str | None:
    """Why a replay from `replay_start` is not out of sample for a version, or None when it is."""
    if periods.out_of_sample(replay_start):
        return None
    return (
        f"{label} has seen data up to {periods.seen_until} ({periods.describe()}); a replay from {replay_start} "
        f"trades it on data it was trained or validated on: replay from a day after {periods.seen_until}, or serve "
        "a version trained before the replay"
    )


def in_sample_versions(registry: ModelRegistry, replay_start: str) -> list[str]:
    """A message for every served version (production or shadow stage) of the registry for which a replay from
    `replay_start` is not out of sample; empty when every served version is out of sample."""
    problems = []
    for name in registry.names():
        stages = registry.stages(name)
        for stage in STAGE_NAMES:
            version = stages.get(stage)
            if version is None:
                continue
            model = registry.get(name, str(version))
            label = f"{model.name}@{model.version} ({stage})"
            try:
                message = in_sample_message(label, data_periods(model.manifest), replay_start)
            except RegistryError as error:  # no window known: it cannot be shown to be out of sample
                message = f"{label}: {error}"
            if message:
                problems.append(message)
    return problems
