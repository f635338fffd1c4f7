"""One feature library for training (batch over history) and live serving (one bar at a time).

`compute_batch(closes)` and `FeatureEngine.update(close)` give identical values (tests/features proves it to 1e-12):
the live signal sees exactly what the policy was trained on. Features at bar t use closes up to t only.
`trading_features.portfolio` does the same for the portfolio agent's cross-sectional and market-index features
(`compute_panel` in training, `PortfolioFeatureEngine` live).
"""

from trading_features.engine import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    WARMUP_BARS,
    FeatureEngine,
    compute_batch,
    feature_hash,
)
from trading_features.portfolio import (
    ASSET_FEATURES,
    MARKET_FEATURES,
    PORTFOLIO_FEATURE_VERSION,
    PORTFOLIO_WARMUP_BARS,
    PortfolioFeatureEngine,
    compute_panel,
)

__all__ = [
    "ASSET_FEATURES",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "MARKET_FEATURES",
    "PORTFOLIO_FEATURE_VERSION",
    "PORTFOLIO_WARMUP_BARS",
    "WARMUP_BARS",
    "FeatureEngine",
    "PortfolioFeatureEngine",
    "compute_batch",
    "compute_panel",
    "feature_hash",
]
