"""A registered RL policy served with onnxruntime: no torch, no RLlib, one observation in well under a millisecond.

The observation is the model's own: the symbol's features standardised with the scaler fitted on the training
window (saved in the manifest), clipped, followed by the symbol's current position in action units. The exported
graph maps it to the deterministic action (the policy's mean, within the action bounds); the target weight is the
action times `max_weight`, the serving cap per symbol.
"""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
from trading_features import FEATURE_NAMES, FEATURE_VERSION

from trading_policy.registry import ModelVersion, RegistryError


class OnnxPolicy:
    def __init__(self, model: ModelVersion, max_weight: float = 0.2) -> None:
        manifest = model.manifest
        if tuple(manifest["feature_names"]) != FEATURE_NAMES or str(manifest["feature_version"]) != FEATURE_VERSION:
            raise RegistryError(
                f"{model.label} was trained on features {manifest['feature_names']} v{manifest['feature_version']}, "
                f"this service computes {list(FEATURE_NAMES)} v{FEATURE_VERSION}; retrain or deploy matching code"
            )
        observation = manifest["observation"]
        self.model = model
        self.model_name = model.name
        self.model_version = model.label
        self.feature_names = FEATURE_NAMES
        self.mean = np.asarray(observation["scaler"]["mean"], dtype=np.float64)
        self.std = np.asarray(observation["scaler"]["std"], dtype=np.float64)
        self.clip = float(observation.get("clip", 5.0))
        self.low = float(manifest["action"]["low"])
        self.high = float(manifest["action"]["high"])
        self.max_weight = max_weight
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model.onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self._obs = np.zeros((1, len(FEATURE_NAMES) + 1), dtype=np.float32)

    def observation(self, features: np.ndarray, position: float) -> np.ndarray:
        scaled = np.clip((np.asarray(features, dtype=np.float64) - self.mean) / self.std, -self.clip, self.clip)
        return np.append(scaled, position).astype(np.float32)

    def action(self, features: np.ndarray, position: float = 0.0) -> float:
        """The policy's action in its own units (a position as a fraction of the serving cap), given the current
        position in the same units."""
        self._obs[0] = self.observation(np.nan_to_num(features), position)
        (out,) = self.session.run(None, {self.input_name: self._obs})
        return self._bounded(float(out.reshape(-1)[0]))

    def _bounded(self, value: float) -> float:
        """The graph's output within the action bounds (0 if it is not a number)."""
        return min(self.high, max(self.low, value)) if math.isfinite(value) else 0.0

    def predict(self, features: np.ndarray, position: float = 0.0) -> float:
        """Target weight given the symbol's features and its current target weight (both fractions of equity)."""
        return round(self.action(features, position / self.max_weight) * self.max_weight, 6)

    def predict_many(self, features: np.ndarray, positions: list[float]) -> list[float]:
        """`predict` for several symbols (one row of features each) in one inference call: each row answered as
        `predict` answers it alone (tests/policy check it on the bundled models)."""
        rows = np.nan_to_num(np.asarray(features, dtype=np.float64).reshape(len(positions), -1))
        scaled = np.clip((rows - self.mean) / self.std, -self.clip, self.clip)
        units = np.asarray(positions, dtype=np.float64).reshape(-1, 1) / self.max_weight
        (out,) = self.session.run(None, {self.input_name: np.hstack((scaled, units)).astype(np.float32)})
        return [round(self._bounded(float(raw)) * self.max_weight, 6) for raw in out.reshape(len(positions), -1)[:, 0]]
