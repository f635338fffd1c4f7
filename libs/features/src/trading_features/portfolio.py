"""Cross-sectional features of a panel of symbols and a market index: what the portfolio agent observes.

One code path for training and serving: `compute_panel` (every day of a history, vectorised) and
`PortfolioFeatureEngine.update` (one day at a time, live) call the same `_panel` function, and every feature of day t
depends only on the last `PORTFOLIO_WARMUP_BARS` days up to t (no expanding statistic), so both give the same values
(tests/features checks it on real data). Nothing at day t sees a later close.

Per symbol (ASSET_FEATURES): log returns over 1, 5, 21, 63 and 126 days; daily volatility over 21 days and its regime
(log of the 21-day over the 126-day volatility); drawdown from the 126-day high; cross-sectional ranks of the 21-day
return, the 126-day return and the 21-day volatility, centred in [-0.5, 0.5].
Market (MARKET_FEATURES, from the index, e.g. the S&P 500): log returns over 1, 5, 21 and 63 days, 21-day volatility,
its regime, drawdown from the 126-day high.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PORTFOLIO_FEATURE_VERSION = "1"
HORIZONS = (1, 5, 21, 63, 126)
MARKET_HORIZONS = (1, 5, 21, 63)
SHORT_VOL = 21
LONG_VOL = 126
PEAK_DAYS = 126
PORTFOLIO_WARMUP_BARS = max(*HORIZONS, LONG_VOL, PEAK_DAYS) + 1
"""Rows before this many days of history are NaN (the longest look-back plus the day itself)."""
ASSET_FEATURES = (
    *(f"return_{h}" for h in HORIZONS),
    "volatility_21",
    "volatility_regime",
    "drawdown_126",
    "rank_return_21",
    "rank_return_126",
    "rank_volatility_21",
)
MARKET_FEATURES = (
    *(f"market_return_{h}" for h in MARKET_HORIZONS),
    "market_volatility_21",
    "market_volatility_regime",
    "market_drawdown_126",
)


def _lagged_difference(values: np.ndarray, lag: int) -> np.ndarray:
    out = np.full(values.shape, np.nan)
    out[lag:] = values[lag:] - values[:-lag]
    return out


def _rolling(values: np.ndarray, window: int, reduce: str) -> np.ndarray:
    """Rolling std (ddof 0) or max over the last `window` rows, row t using rows t-window+1..t; NaN before."""
    out = np.full(values.shape, np.nan)
    if len(values) >= window:
        view = sliding_window_view(values, window, axis=0)  # (T - window + 1, ..., window)
        out[window - 1 :] = view.std(axis=-1) if reduce == "std" else view.max(axis=-1)
    return out


def _ranks(values: np.ndarray) -> np.ndarray:
    """Cross-sectional rank of each row (ties by position), scaled to [-0.5, 0.5]; NaN rows stay NaN."""
    count = values.shape[1]
    order = np.argsort(np.argsort(np.nan_to_num(values, nan=0.0), axis=1, kind="stable"), axis=1, kind="stable")
    ranks = order / max(count - 1, 1) - 0.5
    ranks[np.isnan(values).any(axis=1)] = np.nan
    return ranks


def _series_features(log_closes: np.ndarray, horizons: tuple[int, ...]) -> list[np.ndarray]:
    """Returns over horizons, 21-day volatility, regime, drawdown: each (T, K) for log closes (T, K)."""
    returns = np.full(log_closes.shape, np.nan)
    returns[1:] = np.diff(log_closes, axis=0)
    short = _rolling(returns, SHORT_VOL, "std")
    long = _rolling(returns, LONG_VOL, "std")
    with np.errstate(divide="ignore", invalid="ignore"):
        regime = np.log(np.maximum(short, 1e-12) / np.maximum(long, 1e-12))
    peak = _rolling(log_closes, PEAK_DAYS, "max")
    drawdown = np.exp(log_closes - peak) - 1.0
    return [*(_lagged_difference(log_closes, h) for h in horizons), short, regime, drawdown]


def _panel(closes: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    log_closes = np.log(closes)
    own = _series_features(log_closes, HORIZONS)
    ranks = [_ranks(own[HORIZONS.index(21)]), _ranks(own[HORIZONS.index(126)]), _ranks(own[len(HORIZONS)])]
    assets = np.stack([*own, *ranks], axis=-1)  # (T, N, len(ASSET_FEATURES))
    market = np.stack(_series_features(np.log(index)[:, None], MARKET_HORIZONS), axis=-1)[:, 0, :]
    warm = PORTFOLIO_WARMUP_BARS - 1
    assets[:warm] = np.nan
    market[:warm] = np.nan
    return assets, market


def _check(closes: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    panel = np.asarray(closes, dtype=np.float64)
    series = np.asarray(index, dtype=np.float64).reshape(-1)
    if panel.ndim != 2 or panel.shape[1] < 1:
        raise ValueError(f"closes must be a (days, symbols) panel, got shape {panel.shape}")
    if len(series) != len(panel):
        raise ValueError(f"index must have one value per day of closes ({len(panel)}), got {len(series)}")
    for name, values in (("closes", panel), ("index", series)):
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"{name} must be finite and positive")
    return panel, series


def compute_panel(closes: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """closes (T, N), index (T,) -> (asset features (T, N, len(ASSET_FEATURES)), market features (T,
    len(MARKET_FEATURES))); rows before PORTFOLIO_WARMUP_BARS - 1 are NaN. Row t uses rows up to t only."""
    return _panel(*_check(closes, index))


class PortfolioFeatureEngine:
    """Live features: `update(closes_of_the_day, index_close)` once a day; None until warmed up, then the features
    of that day exactly as `compute_panel` gives them for the same history."""

    def __init__(self, symbols: int) -> None:
        self.symbols = symbols
        self._closes: deque[np.ndarray] = deque(maxlen=PORTFOLIO_WARMUP_BARS)
        self._index: deque[float] = deque(maxlen=PORTFOLIO_WARMUP_BARS)

    def update(self, closes: np.ndarray, index_close: float) -> tuple[np.ndarray, np.ndarray] | None:
        row = np.asarray(closes, dtype=np.float64).reshape(-1)
        if row.shape != (self.symbols,):
            raise ValueError(f"closes must hold {self.symbols} values (one per symbol), got {row.shape[0]}")
        _check(row[None, :], np.array([index_close]))
        self._closes.append(row)
        self._index.append(float(index_close))
        if len(self._closes) < PORTFOLIO_WARMUP_BARS:
            return None
        assets, market = _panel(np.stack(self._closes), np.fromiter(self._index, dtype=np.float64))
        return assets[-1], market[-1]
