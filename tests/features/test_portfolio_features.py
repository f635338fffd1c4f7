"""The portfolio agent's features: training (batch) and serving (live engine) give identical values; no look-ahead;
bad input is refused with the field named."""

from __future__ import annotations

import numpy as np
import pytest
from trading_agent.envs import index_closes
from trading_datasets import close_panel
from trading_features import (
    ASSET_FEATURES,
    MARKET_FEATURES,
    PORTFOLIO_WARMUP_BARS,
    PortfolioFeatureEngine,
    compute_panel,
)

SYMBOLS = ["AAPL", "JNJ", "KO", "XOM", "JPM", "MSFT"]


@pytest.fixture(scope="module")
def real() -> tuple[np.ndarray, np.ndarray]:
    dates, closes = close_panel(SYMBOLS, "skfolio", "2006-01-01", "2008-12-31")
    return closes, index_closes(dates)


def test_batch_and_live_engine_are_bit_identical_on_real_data(real):
    closes, index = real
    assets, market = compute_panel(closes, index)
    assert assets.shape == (len(closes), len(SYMBOLS), len(ASSET_FEATURES))
    assert market.shape == (len(closes), len(MARKET_FEATURES))
    engine = PortfolioFeatureEngine(len(SYMBOLS))
    for t in range(len(closes)):
        live = engine.update(closes[t], float(index[t]))
        if t < PORTFOLIO_WARMUP_BARS - 1:
            assert live is None and np.isnan(assets[t]).all() and np.isnan(market[t]).all()
        else:
            assert live is not None
            np.testing.assert_array_equal(live[0], assets[t])
            np.testing.assert_array_equal(live[1], market[t])
    warm = assets[PORTFOLIO_WARMUP_BARS - 1 :]
    assert np.isfinite(warm).all()
    ranks = warm[..., [ASSET_FEATURES.index("rank_return_21"), ASSET_FEATURES.index("rank_volatility_21")]]
    assert ranks.min() == -0.5 and ranks.max() == 0.5
    np.testing.assert_allclose(ranks.sum(axis=1), 0.0, atol=1e-12)  # ranks are centred across the symbols
    assert (warm[..., ASSET_FEATURES.index("drawdown_126")] <= 0).all()


def test_returns_and_drawdown_by_hand(real):
    closes, index = real
    assets, market = compute_panel(closes, index)
    t, k = 300, 2
    assert assets[t, k, ASSET_FEATURES.index("return_21")] == pytest.approx(np.log(closes[t, k] / closes[t - 21, k]))
    peak = closes[t - 125 : t + 1, k].max()
    assert assets[t, k, ASSET_FEATURES.index("drawdown_126")] == pytest.approx(closes[t, k] / peak - 1.0)
    daily = np.diff(np.log(index[t - 21 : t + 1]))
    assert market[t, MARKET_FEATURES.index("market_volatility_21")] == pytest.approx(daily.std())


def test_features_at_t_do_not_see_the_future(real):
    closes, index = real
    t = 400
    moved_closes, moved_index = closes.copy(), index.copy()
    rng = np.random.default_rng(3)
    moved_closes[t + 1 :] *= rng.uniform(0.5, 1.5, size=moved_closes[t + 1 :].shape)
    moved_index[t + 1 :] *= rng.uniform(0.5, 1.5, size=moved_index[t + 1 :].shape)
    a_assets, a_market = compute_panel(closes, index)
    b_assets, b_market = compute_panel(moved_closes, moved_index)
    np.testing.assert_array_equal(a_assets[: t + 1], b_assets[: t + 1])
    np.testing.assert_array_equal(a_market[: t + 1], b_market[: t + 1])
    assert not np.allclose(a_assets[t + 1 :], b_assets[t + 1 :])


def test_bad_input_is_refused_naming_it(real):
    closes, index = real
    with pytest.raises(ValueError, match="index must have one value per day"):
        compute_panel(closes, index[:-1])
    bad = closes.copy()
    bad[10, 1] = -1.0
    with pytest.raises(ValueError, match="closes must be finite and positive"):
        compute_panel(bad, index)
    with pytest.raises(ValueError, match="index must be finite and positive"):
        compute_panel(closes, np.where(np.arange(len(index)) == 5, np.nan, index))
    engine = PortfolioFeatureEngine(3)
    with pytest.raises(ValueError, match="closes must hold 3 values"):
        engine.update(np.ones(4), 100.0)
    assert engine.update(np.ones(3), 100.0) is None  # a refused update kept nothing
    assert len(engine._closes) == 1
