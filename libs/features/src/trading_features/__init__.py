"""One feature library for training (batch over history) and live serving (one bar at a time).

`compute_batch(closes)` and `FeatureEngine.update(close)` give identical values (tests/features proves it to 1e-12):
the live signal sees exactly what the policy was trained on. Features at bar t use closes up to t only.
"""

from trading_features.engine import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    WARMUP_BARS,
    FeatureEngine,
    compute_batch,
    feature_hash,
)

__all__ = ["FEATURE_NAMES", "FEATURE_VERSION", "WARMUP_BARS", "FeatureEngine", "compute_batch", "feature_hash"]
