"""`Policy`: features of one symbol in, target weight out. `BaselinePolicy`: a trend rule on the same features."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from trading_features import FEATURE_NAMES, FEATURE_VERSION


class Policy(Protocol):
    model_name: str
    model_version: str
    feature_names: tuple[str, ...]

    def predict(self, features: np.ndarray, position: float = 0.0) -> float:
        """Target position of one symbol as a fraction of equity, in [-1, 1], given its features and the target
        this policy last gave for the symbol (its current position, same units)."""
        ...


class BaselinePolicy:
    """Trend following, long only: hold max_weight * tanh(ma_gap_20 / scale) when the 20-bar return is positive,
    nothing otherwise. Deterministic, no learned parameters: the yardstick the RL policy has to beat."""

    model_name = "baseline-trend"
    feature_names = FEATURE_NAMES

    def __init__(self, max_weight: float = 0.2, scale: float = 0.002) -> None:
        self.max_weight = max_weight
        self.scale = scale
        self.model_version = f"baseline-1+features-{FEATURE_VERSION}"

    def predict(self, features: np.ndarray, position: float = 0.0) -> float:
        momentum = features[FEATURE_NAMES.index("return_20")]
        gap = features[FEATURE_NAMES.index("ma_gap_20")]
        if not (math.isfinite(momentum) and math.isfinite(gap)) or momentum <= 0:
            return 0.0
        return round(max(0.0, self.max_weight * math.tanh(gap / self.scale)), 4)
