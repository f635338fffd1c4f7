"""trading_policy.periods: a manifest's training and validation windows, the day a version has seen data up to, and
which served versions of a registry a replay would trade in sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from trading_policy import ModelRegistry, RegistryError
from trading_policy.periods import data_periods, in_sample_message, in_sample_versions
from trading_policy.testing import register_linear_policy

WEIGHTS = [0.1] * 6
WINDOWS = {
    "train_start": "1990-01-01",
    "train_end": "2007-12-31",
    "train_days": ["1990-01-02", "2007-12-31"],
    "validate_start": "2008-01-01",
    "validate_end": "2009-12-31",
    "validate_days": ["2008-01-02", "2009-12-31"],
}


def test_periods_are_the_trading_days_used_and_the_validation_end_counts_as_seen() -> None:
    periods = data_periods({"data": WINDOWS})
    assert periods.train == ("1990-01-02", "2007-12-31") and periods.validate == ("2008-01-02", "2009-12-31")
    assert periods.seen_until == "2009-12-31"  # validation chose the version: its days are seen too
    assert periods.out_of_sample("2010-01-04") and not periods.out_of_sample("2009-12-31")
    assert not periods.out_of_sample("2008-06-02")  # inside the validation window
    configured = data_periods({"data": {"train_start": "2000-01-01", "train_end": "2015-12-31"}})
    assert configured.train == ("2000-01-01", "2015-12-31") and configured.validate is None
    assert configured.seen_until == "2015-12-31"


def test_a_replay_in_sample_is_explained_with_the_dates() -> None:
    message = in_sample_message("trend-ppo@1", data_periods({"data": WINDOWS}), "2009-08-03")
    assert message is not None and "2009-12-31" in message and "2009-08-03" in message
    assert in_sample_message("trend-ppo@2", data_periods({"data": WINDOWS}), "2010-01-04") is None


@pytest.mark.parametrize(
    ("manifest", "named"),
    [
        ({}, "data"),
        ({"data": {"source": "skfolio"}}, "data.train_start"),
        ({"data": {"train_start": "2000-01-01", "train_end": "end of 2015"}}, "end of 2015"),
        ({"data": {"train_start": "2016-01-01", "train_end": "2015-12-31"}}, "ends (2015-12-31) before"),
    ],
)
def test_a_manifest_without_a_usable_window_is_refused_naming_it(manifest: dict[str, object], named: str) -> None:
    with pytest.raises(RegistryError, match="manifest") as raised:
        data_periods(manifest)
    assert named in str(raised.value)


def test_served_versions_of_a_registry_are_checked_production_and_shadow(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    register_linear_policy(registry, "trend-ppo", WEIGHTS, data=WINDOWS)  # 1: production, out of sample for 2010
    late = {**WINDOWS, "validate_days": ["2008-01-02", "2011-12-30"]}
    register_linear_policy(registry, "trend-ppo", WEIGHTS, data=late, promote="shadow")  # 2: seen 2011
    register_linear_policy(registry, "other", WEIGHTS)  # no window at all: cannot be shown out of sample
    problems = in_sample_versions(registry, "2010-01-04")
    assert len(problems) == 2
    assert any(p.startswith("trend-ppo@2 (shadow)") and "2011-12-30" in p for p in problems)
    assert any(p.startswith("other@1 (production)") and "train_start" in p for p in problems)
    later = in_sample_versions(registry, "2012-01-03")  # after every window: only the one without a window is left
    assert len(later) == 1 and later[0].startswith("other@1 (production)")
