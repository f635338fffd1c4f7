"""The model registry keeps immutable versions with their manifest and content hash, moves stage pointers with a
history, refuses tampered versions; the ONNX policy serves exactly what the graph computes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trading_features import FEATURE_NAMES
from trading_policy import ModelRegistry, RegistryError
from trading_policy.onnx_policy import OnnxPolicy
from trading_policy.testing import register_linear_policy

WEIGHTS = [0.5, -0.2, 0.1, 0.3, -0.4, 0.25]


def test_versions_count_up_and_carry_their_manifest(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    first = register_linear_policy(registry, "m", WEIGHTS, promote=None)
    second = register_linear_policy(registry, "m", WEIGHTS, bias=0.1, promote=None)
    assert [v.version for v in registry.versions("m")] == ["1", "2"]
    assert first.manifest["name"] == "m" and first.manifest["feature_names"] == list(FEATURE_NAMES)
    assert len(first.content_hash) == 64 and first.content_hash != second.content_hash
    assert first.label == f"m@1+{first.content_hash[:12]}"
    assert registry.names() == ["m"]


def test_promote_and_rollback_move_the_pointer_with_history(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(RegistryError, match="tradectl train"):
        registry.get("m")
    register_linear_policy(registry, "m", WEIGHTS)
    register_linear_policy(registry, "m", WEIGHTS, bias=0.1, promote=None)
    assert registry.get("m").version == "1"
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback("m")
    registry.promote("m", "2", reason="better validation Sharpe")
    assert registry.get("m").version == "2"
    registry.rollback("m")
    assert registry.get("m").version == "1"
    history = registry.stages("m")["history"]
    assert [(h["from"], h["to"]) for h in history] == [(None, "1"), ("1", "2"), ("2", "1")]
    registry.promote("m", "2", stage="shadow")
    assert registry.get("m", stage="shadow").version == "2"
    with pytest.raises(RegistryError, match="unknown stage"):
        registry.promote("m", "2", stage="canary")
    with pytest.raises(RegistryError, match="no version '9'"):
        registry.promote("m", "9")


def test_a_tampered_version_is_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    model = register_linear_policy(registry, "m", WEIGHTS, promote=None)
    data = bytearray(model.onnx_path.read_bytes())
    data[-1] ^= 1
    model.onnx_path.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match="files changed after registration"):
        registry.promote("m", "1")


def test_register_requires_a_full_manifest(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    model = register_linear_policy(registry, "m", WEIGHTS, promote=None)
    manifest = json.loads((model.path / "manifest.json").read_text())
    del manifest["seed"]
    with pytest.raises(RegistryError, match="seed"):
        registry.register("n", model.onnx_path, manifest)


def test_onnx_policy_computes_the_graph_on_the_scaled_observation(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    model = register_linear_policy(registry, "m", WEIGHTS, bias=0.05)
    policy = OnnxPolicy(model, max_weight=0.2)
    features = np.array([0.01, -0.02, 0.05, 0.003, 0.012])
    scaled = np.clip(features / 0.01, -5, 5)  # the fixture's scaler: mean 0, std 0.01
    position = 0.1  # target weight; the policy sees it in action units (/ max_weight)
    expected = np.tanh(np.append(scaled, position / 0.2) @ np.array(WEIGHTS) + 0.05)
    assert policy.action(features, position / 0.2) == pytest.approx(expected, abs=1e-6)
    assert policy.predict(features, position) == pytest.approx(round(expected * 0.2, 6), abs=1e-6)
    assert policy.model_version == model.label
    assert policy.predict(np.full(5, np.nan)) == pytest.approx(np.tanh(0.05) * 0.2, abs=1e-6)


def test_onnx_policy_refuses_a_model_trained_on_other_features(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    model = register_linear_policy(registry, "m", WEIGHTS, feature_version="0")
    with pytest.raises(RegistryError, match="retrain"):
        OnnxPolicy(model)
