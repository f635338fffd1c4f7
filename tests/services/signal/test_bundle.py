"""signal_service.bundle: a trained version joins the bundled registry with the replay it is made for, promoted,
and a version that has seen the replay's days is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from signal_service import BUNDLED_REGISTRY
from signal_service.bundle import bundle
from trading_policy import ModelRegistry, RegistryError
from trading_policy.periods import data_periods

REPLAY = {
    "exchange": "paper-exchange",
    "source": "bokeh",
    "symbols": ["AAPL"],
    "start": "2010-01-04",
    "end": "2013-03-01",
}


def test_an_out_of_sample_version_is_registered_promoted_and_names_its_replay(tmp_path: Path) -> None:
    source = BUNDLED_REGISTRY / "trend-ppo" / "2"
    manifest = bundle(source, REPLAY, tmp_path / "bundled")
    registry = ModelRegistry(tmp_path / "bundled")
    served = registry.get("trend-ppo")
    registry.verify(served)  # its files hash as its manifest says
    assert served.version == "1" and manifest["version"] == "1" and served.manifest["replay"] == REPLAY
    original = ModelRegistry(BUNDLED_REGISTRY).get("trend-ppo", "2")
    assert served.content_hash == original.content_hash  # the same policy and training record, byte for byte
    assert data_periods(served.manifest).train == data_periods(original.manifest).train
    assert registry.stages("trend-ppo")["history"][-1]["reason"] == "out of sample for the replay from 2010-01-04"


def test_a_version_that_has_seen_the_replay_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="has seen data up to 2017-12-29"):
        bundle(BUNDLED_REGISTRY / "trend-ppo" / "1", REPLAY, tmp_path / "bundled")
    assert not (tmp_path / "bundled").exists()


def test_a_version_whose_files_changed_is_refused(tmp_path: Path) -> None:
    shutil.copytree(BUNDLED_REGISTRY / "trend-ppo", tmp_path / "trained" / "trend-ppo")
    (tmp_path / "trained" / "trend-ppo" / "2" / "training.json").write_text("{}\n")
    with pytest.raises(RegistryError, match="files changed after registration"):
        bundle(tmp_path / "trained" / "trend-ppo" / "2", REPLAY, tmp_path / "bundled")
