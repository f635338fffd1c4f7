"""Batched policy calls: one actor call for the symbols of a burst, each answered exactly as it would be alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from signal_service.serving import PolicyActor, PredictionBatcher
from trading_features import FEATURE_NAMES
from trading_policy import ModelRegistry
from trading_policy.testing import register_linear_policy

WEIGHTS = [0.5, -0.2, 0.1, 0.3, -0.4, 0.25]


def test_predict_many_answers_each_row_as_predict_does(tmp_path: Path) -> None:
    model = register_linear_policy(ModelRegistry(tmp_path), "trend-ppo", WEIGHTS)
    actor = PolicyActor(str(model.path), model.name, model.version, model.manifest, 0.2)
    rng = np.random.default_rng(7)
    features = rng.normal(size=(5, len(FEATURE_NAMES)))
    positions = [0.0, 0.1, -0.05, 0.2, 0.0]
    assert actor.predict_many(features, positions) == [
        actor.predict(f, p) for f, p in zip(features, positions, strict=True)
    ]


class Method:
    """Stands in for a Ray actor method: `.remote(...)` returns an awaitable, as an ObjectRef is."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.calls: list[tuple[Any, ...]] = []

    def remote(self, *args: Any) -> Any:
        self.calls.append(args)

        async def answer() -> Any:
            await asyncio.sleep(0.001)
            return self.function(*args)

        return answer()


class FakeActor:
    def __init__(self) -> None:
        self.predict = Method(lambda features, position: float(features.sum() + position))
        self.predict_many = Method(
            lambda features, positions: [float(f.sum() + p) for f, p in zip(features, positions, strict=True)]
        )


async def test_predictions_asked_together_go_as_one_call_and_each_gets_its_own_answer() -> None:
    actor = FakeActor()
    batcher = PredictionBatcher.for_actor(actor)
    rows = [np.full(3, float(i)) for i in range(4)]
    answers = await asyncio.gather(*(batcher.predict(row, 0.5 * i) for i, row in enumerate(rows)))
    assert answers == [3 * i + 0.5 * i for i in range(4)]
    assert len(actor.predict_many.calls) == 1 and actor.predict.calls == []
    assert await batcher.predict(rows[1], 0.0) == 3.0  # alone: the plain call
    assert len(actor.predict.calls) == 1


async def test_a_failed_call_fails_every_prediction_in_it() -> None:
    actor = FakeActor()
    actor.predict_many = Method(lambda features, positions: 1 / 0)
    batcher = PredictionBatcher.for_actor(actor)
    results = await asyncio.gather(*(batcher.predict(np.zeros(3), 0.0) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, ZeroDivisionError) for result in results)
    with pytest.raises(ZeroDivisionError):
        await asyncio.gather(batcher.predict(np.zeros(3), 0.0), batcher.predict(np.zeros(3), 0.0))


@pytest.mark.parametrize("version", ["1", "2"])
def test_one_inference_call_answers_each_symbol_as_alone_on_the_bundled_models(version: str) -> None:
    """In-process serving batches the symbols of a fetch into one onnxruntime call: every answer must equal the
    one-row call's, bit for bit, or a replay bar by bar would disagree with the live run."""
    from signal_service import BUNDLED_REGISTRY
    from trading_policy.onnx_policy import OnnxPolicy

    policy = OnnxPolicy(ModelRegistry(BUNDLED_REGISTRY).get("trend-ppo", version), 0.2)
    rng = np.random.default_rng(11)
    features = policy.mean + policy.std * rng.normal(scale=2.0, size=(2000, len(FEATURE_NAMES)))
    features[::97, 0] = np.nan  # a feature not yet computable is served as 0, alone or batched
    positions = list(rng.uniform(-0.2, 0.2, size=2000))
    for size in (2, 7, 64, 480, 2000):
        assert policy.predict_many(features[:size], positions[:size]) == [
            policy.predict(f, p) for f, p in zip(features[:size], positions[:size], strict=True)
        ]


async def test_in_process_predictions_asked_together_are_one_inference_call(tmp_path: Path) -> None:
    from trading_policy.onnx_policy import OnnxPolicy

    model = register_linear_policy(ModelRegistry(tmp_path), "trend-ppo", WEIGHTS)
    policy = OnnxPolicy(model, 0.2)
    runs = []
    session_run = policy.session.run
    policy.session.run = lambda *args: runs.append(args) or session_run(*args)  # type: ignore[method-assign]
    batcher = PredictionBatcher.in_process(policy)
    rows = [np.full(len(FEATURE_NAMES), 0.1 * i) for i in range(6)]
    answers = await asyncio.gather(*(batcher.predict(row, 0.0) for row in rows))
    assert len(runs) == 1 and answers == [policy.predict(row, 0.0) for row in rows]
