"""Test fixtures: a small, fully specified ONNX policy (tanh of a linear map of the observation) registered with a
complete manifest, so the registry, serving, hot swap and monitoring are tested without training a model. The RL
models themselves are produced by `tradectl train` (trading_agent.training) and tested there."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from trading_features import FEATURE_NAMES, FEATURE_VERSION

from trading_policy.registry import ModelRegistry, ModelVersion

OBS_DIM = len(FEATURE_NAMES) + 1


def write_linear_policy(path: Path, weights: Sequence[float], bias: float = 0.0) -> Path:
    """action = tanh(obs @ weights + bias), obs float32 [batch, 6] named "obs", action [batch, 1] named "action"."""
    w = numpy_helper.from_array(np.asarray(weights, dtype=np.float32).reshape(OBS_DIM, 1), "w")
    b = numpy_helper.from_array(np.asarray([bias], dtype=np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["obs", "w"], ["linear"]),
            helper.make_node("Add", ["linear", "b"], ["shifted"]),
            helper.make_node("Tanh", ["shifted"], ["action"]),
        ],
        "linear_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", OBS_DIM])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 1])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def linear_manifest(**overrides: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "algorithm": "fixture-linear",
        "env": "single",
        "seed": 0,
        "hyperparameters": {},
        "data": {"source": "fixture", "symbols": [], "train_start": "", "train_end": ""},
        "feature_names": list(FEATURE_NAMES),
        "feature_version": FEATURE_VERSION,
        "observation": {
            "layout": [*FEATURE_NAMES, "position"],
            "scaler": {"mean": [0.0] * len(FEATURE_NAMES), "std": [0.01] * len(FEATURE_NAMES)},
            "clip": 5.0,
        },
        "action": {"low": -1.0, "high": 1.0, "long_only": False},
        "metrics": {},
        "expected_reward_per_step": 0.0,
        "code_version": "fixture",
    }
    manifest.update(overrides)
    return manifest


def register_linear_policy(
    registry: ModelRegistry,
    name: str,
    weights: Sequence[float],
    bias: float = 0.0,
    promote: str | None = "production",
    **manifest: Any,
) -> ModelVersion:
    with tempfile.TemporaryDirectory() as directory:
        onnx_path = write_linear_policy(Path(directory) / "policy.onnx", weights, bias)
        model = registry.register(name, onnx_path, linear_manifest(**manifest))
    if promote:
        registry.promote(name, model.version, promote)
    return model
