"""Where policies run: a registered model on a Ray actor (onnxruntime inside; the serving image carries no training
stack), or in process (the baseline, and a registered model when `SIGNAL__SERVING=local`).

`ServedPolicy` is one loaded model version. `PolicySlots` holds the live and the optional shadow policy and swaps a
slot atomically: the new version is loaded and answers a warm-up prediction before it replaces the old one, so a
bar is always answered by exactly one version and none is dropped while a swap happens. The old actor is killed a
grace period later, after any prediction still in flight on it has returned.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from trading_features import FEATURE_NAMES
from trading_platform.observability import get_logger
from trading_policy import BaselinePolicy, ModelRegistry, ModelVersion
from trading_policy.onnx_policy import OnnxPolicy

log = get_logger("signal.serving")
ACTOR_GRACE_S = 5.0


class PolicyActor:
    """Ray actor body: one OnnxPolicy per actor process."""

    def __init__(self, path: str, name: str, version: str, manifest: dict[str, Any], max_weight: float) -> None:
        from pathlib import Path

        self.policy = OnnxPolicy(ModelVersion(name, version, Path(path), manifest), max_weight)

    def predict(self, features: np.ndarray, position: float) -> float:
        return self.policy.predict(features, position)

    def predict_many(self, features: np.ndarray, positions: list[float]) -> list[float]:
        """One call for the bars of several symbols: each answered exactly as `predict` would answer it alone."""
        return self.policy.predict_many(features, positions)


One = Callable[[np.ndarray, float], Awaitable[float]]
Many = Callable[[np.ndarray, list[float]], Awaitable[list[float]]]


class PredictionBatcher:
    """Predictions asked for in the same event-loop turn (the symbols of one fetch, handled side by side) go to the
    policy as one call: on Ray one round trip instead of one per symbol, in process one inference call; each is
    answered as alone."""

    def __init__(self, one: One, many: Many) -> None:
        self.one, self.many = one, many
        self._waiting: list[tuple[np.ndarray, float, asyncio.Future[float]]] = []
        self._calls: set[asyncio.Future[None]] = set()

    @classmethod
    def for_actor(cls, actor: Any) -> PredictionBatcher:
        return cls(actor.predict.remote, actor.predict_many.remote)

    @classmethod
    def in_process(cls, policy: OnnxPolicy) -> PredictionBatcher:
        async def one(features: np.ndarray, position: float) -> float:
            return policy.predict(features, position)

        async def many(features: np.ndarray, positions: list[float]) -> list[float]:
            return policy.predict_many(features, positions)

        return cls(one, many)

    async def predict(self, features: np.ndarray, position: float) -> float:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[float] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._send)  # after everything already runnable has had its turn to join
        self._waiting.append((np.asarray(features, dtype=np.float64), position, answer))
        return await answer

    def _send(self) -> None:
        batch, self._waiting = self._waiting, []
        call = asyncio.ensure_future(self._call(batch))
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _call(self, batch: list[tuple[np.ndarray, float, asyncio.Future[float]]]) -> None:
        try:
            if len(batch) == 1:
                values = [await self.one(batch[0][0], batch[0][1])]
            else:
                features = np.stack([features for features, _, _ in batch])
                values = await self.many(features, [position for _, position, _ in batch])
        except Exception as error:  # every caller hears it
            for _, _, answer in batch:
                if not answer.done():
                    answer.set_exception(error)
            return
        for (_, _, answer), value in zip(batch, values, strict=True):
            if not answer.done():
                answer.set_result(float(value))


@dataclass
class ServedPolicy:
    model_name: str
    model_version: str
    content_hash: str
    manifest: dict[str, Any] | None  # None for the baseline
    runner: Any  # an in-process policy, or a Ray actor handle
    on_ray: bool
    registry_version: str = ""  # the registry's version number, "" for the baseline

    batcher: PredictionBatcher | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.on_ray:
            self.batcher = PredictionBatcher.for_actor(self.runner)
        elif isinstance(self.runner, OnnxPolicy):
            self.batcher = PredictionBatcher.in_process(self.runner)
        # else the baseline: arithmetic, nothing to batch

    async def predict(self, features: np.ndarray, position: float) -> float:
        if self.batcher is None:
            return float(self.runner.predict(features, position))
        return await self.batcher.predict(features, position)

    def close(self) -> None:
        if self.on_ray:
            import ray

            with contextlib.suppress(Exception):
                ray.kill(self.runner)


def baseline(max_weight: float) -> ServedPolicy:
    policy = BaselinePolicy(max_weight=max_weight)
    return ServedPolicy(policy.model_name, policy.model_version, "", None, policy, on_ray=False)


def init_ray(address: str | None) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(
            address=address or None,
            num_cpus=None if address else 2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )


async def load(model: ModelVersion, max_weight: float, on_ray: bool) -> ServedPolicy:
    """Load a registered version where it will run and check it answers before it is used."""
    if on_ray:
        import ray

        actor_class = ray.remote(num_cpus=0)(PolicyActor)
        runner = actor_class.remote(str(model.path), model.name, model.version, model.manifest, max_weight)
    else:
        runner = OnnxPolicy(model, max_weight)
    served = ServedPolicy(model.name, model.label, model.content_hash, model.manifest, runner, on_ray, model.version)
    await served.predict(np.zeros(len(FEATURE_NAMES)), 0.0)  # warm-up: a broken model fails here, not on a bar
    return served


class PolicySlots:
    """The live policy and the optional shadow one, each swappable while bars flow."""

    def __init__(self, live: ServedPolicy, shadow: ServedPolicy | None = None) -> None:
        self.live = live
        self.shadow = shadow
        self._retiring: set[asyncio.Task[None]] = set()

    def swap(self, role: str, new: ServedPolicy | None) -> ServedPolicy | None:
        old = self.live if role == "live" else self.shadow
        if role == "live":
            assert new is not None, "the live slot is never empty"
            self.live = new
        else:
            self.shadow = new
        if old is not None:
            self._retire(old)
        return old

    def _retire(self, old: ServedPolicy) -> None:
        async def later() -> None:
            await asyncio.sleep(ACTOR_GRACE_S)
            old.close()

        task = asyncio.get_running_loop().create_task(later())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        for served in (self.live, self.shadow):
            if served is not None:
                served.close()


def wanted_versions(registry: ModelRegistry, name: str) -> dict[str, str | None]:
    stages = registry.stages(name)
    return {"live": stages.get("production"), "shadow": stages.get("shadow")}
