"""One feature library: batch (training) and incremental (serving) agree exactly; no look-ahead."""

from __future__ import annotations

import numpy as np
from trading_datasets import daily_ohlcv
from trading_features import FEATURE_NAMES, WARMUP_BARS, FeatureEngine, compute_batch, feature_hash


def test_batch_and_incremental_give_identical_values_on_real_data() -> None:
    closes = daily_ohlcv("AAPL", "bokeh", "2004-01-01", "2006-12-31").close
    batch = compute_batch(closes)
    engine = FeatureEngine()
    for t, close in enumerate(closes):
        live = engine.update(float(close))
        if t < WARMUP_BARS - 1:
            assert live is None and np.isnan(batch[t]).all()
        else:
            assert live is not None
            np.testing.assert_allclose(live, batch[t], rtol=0, atol=1e-12)
            assert feature_hash(live) == feature_hash(batch[t])
    assert batch.shape == (len(closes), len(FEATURE_NAMES))


def test_features_at_t_do_not_see_the_future() -> None:
    closes = daily_ohlcv("MSFT", "bokeh", "2005-01-01", "2005-12-31").close.copy()
    before = compute_batch(closes)
    t = 150
    perturbed = closes.copy()
    perturbed[t + 1 :] *= np.linspace(0.5, 2.0, len(closes) - t - 1)
    after = compute_batch(perturbed)
    np.testing.assert_array_equal(before[: t + 1], after[: t + 1])
    assert not np.allclose(before[t + 1 :], after[t + 1 :])
