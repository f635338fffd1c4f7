"""Feature standardisation fitted on the training window only, and the precomputed (vectorised) feature arrays the
environments step through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from trading_features import FEATURE_NAMES, compute_batch

CLIP = 5.0
"""Scaled features are clipped to [-CLIP, CLIP]: one extreme day cannot saturate the network."""


def feature_panel(closes: np.ndarray) -> np.ndarray:
    """trading_features of every symbol of a close panel: closes (T,) or (T, K) -> features (K, T, 5), NaN rows before
    warm-up. Row t of a symbol uses its closes up to t only (`compute_batch`), so no feature sees the future."""
    panel = np.asarray(closes, dtype=np.float64)
    if panel.ndim == 1:
        panel = panel[:, None]
    if panel.ndim != 2 or len(panel) < 2:
        raise ValueError(f"closes must be a (days,) or (days, symbols) array, got shape {panel.shape}")
    if not np.all(np.isfinite(panel)) or np.any(panel <= 0):
        raise ValueError("closes must be finite and positive")
    return np.stack([compute_batch(panel[:, k]) for k in range(panel.shape[1])])


@dataclass(frozen=True)
class Scaler:
    """Per-feature mean and standard deviation; `transform` gives clip((x - mean) / std, -CLIP, CLIP)."""

    mean: np.ndarray
    std: np.ndarray
    clip: float = CLIP

    @classmethod
    def fit(cls, features: np.ndarray, rows: slice | None = None) -> Scaler:
        """Fit on the finite rows of `features` (..., days, 5) restricted to `rows` (the training days): the data
        of any later window never enters the scaler."""
        values = np.asarray(features, dtype=np.float64)
        if rows is not None:
            values = values[..., rows, :]
        values = values.reshape(-1, values.shape[-1])
        values = values[np.isfinite(values).all(axis=1)]
        if len(values) < 2:
            raise ValueError("the training window has fewer than 2 warmed-up feature rows: too short to fit a scaler")
        std = values.std(axis=0)
        std[std < 1e-12] = 1.0
        return cls(values.mean(axis=0), std)

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Scaled, clipped float32 features; rows still in warm-up (NaN) become 0."""
        scaled = np.clip((np.asarray(features, dtype=np.float64) - self.mean) / self.std, -self.clip, self.clip)
        return np.nan_to_num(scaled, nan=0.0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """{"mean": [...], "std": [...]} in FEATURE_NAMES order (the manifest's observation.scaler)."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, values: dict[str, Any], clip: float = CLIP, width: int = len(FEATURE_NAMES)) -> Scaler:
        """A scaler of `width` features (default: the 5 trading_features) from `to_dict`'s mapping."""
        mean, std = np.asarray(values["mean"], dtype=np.float64), np.asarray(values["std"], dtype=np.float64)
        if mean.shape != (width,) or std.shape != mean.shape or np.any(std <= 0):
            raise ValueError(f"a scaler needs {width} means and positive stds, got {values}")
        return cls(mean, std, clip)
