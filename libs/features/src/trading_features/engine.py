"""Features of a price series: returns over several horizons, distance from the moving average, volatility."""

from __future__ import annotations

import hashlib
import math
from collections import deque

import numpy as np

FEATURE_VERSION = "1"
WINDOW = 20
WARMUP_BARS = WINDOW + 1
FEATURE_NAMES = ("return_1", "return_5", "return_20", "ma_gap_20", "volatility_20")


def _features(window: np.ndarray) -> np.ndarray:
    """The features of the last bar of a window of WARMUP_BARS closes (oldest first)."""
    log_closes = np.log(window)
    returns = np.diff(log_closes)
    last = log_closes[-1]
    ma = window[-WINDOW:].mean()
    return np.array(
        [
            last - log_closes[-2],
            last - log_closes[-6],
            last - log_closes[-21],
            window[-1] / ma - 1.0,
            returns[-WINDOW:].std(),
        ]
    )


def compute_batch(closes: np.ndarray) -> np.ndarray:
    """Features for every bar of a history; rows before warm-up are NaN. Row t uses closes[: t + 1] only."""
    closes = np.asarray(closes, dtype=np.float64)
    out = np.full((len(closes), len(FEATURE_NAMES)), np.nan)
    for t in range(WARMUP_BARS - 1, len(closes)):
        out[t] = _features(closes[t - WARMUP_BARS + 1 : t + 1])
    return out


class FeatureEngine:
    """Incremental features for one symbol: update() with each new close; None until warmed up."""

    def __init__(self) -> None:
        self.closes: deque[float] = deque(maxlen=WARMUP_BARS)

    def update(self, close: float) -> np.ndarray | None:
        if not math.isfinite(close) or close <= 0:
            raise ValueError(f"a close must be a positive number, got {close!r}")
        self.closes.append(close)
        if len(self.closes) < WARMUP_BARS:
            return None
        return _features(np.fromiter(self.closes, dtype=np.float64, count=WARMUP_BARS))


def feature_hash(vector: np.ndarray) -> str:
    """SHA-256 of the feature vector (float64, rounded to 12 decimals so equal values hash equal)."""
    return hashlib.sha256(np.round(np.asarray(vector, dtype=np.float64), 12).tobytes()).hexdigest()
