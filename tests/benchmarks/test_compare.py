"""bench-compare's statistics on known samples, and one real A/B run (a worktree of HEAD and this tree)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.benchmarks import compare


def test_same_distribution_is_within_the_noise() -> None:
    rng = np.random.default_rng(1)
    a, b = list(rng.normal(100, 5, 12)), list(rng.normal(100, 5, 12))
    ratio, low, high = compare.ratio_interval(a, b)
    assert low < 1 < high and 0.9 < ratio < 1.1
    assert compare.verdict(low, high, 0.03) == "same (within noise)"


def test_a_slower_tree_is_a_regression_and_a_faster_one_is_not() -> None:
    rng = np.random.default_rng(2)
    a = list(rng.normal(100, 5, 12))
    slower = [x * 1.3 for x in rng.normal(100, 5, 12)]
    ratio, low, high = compare.ratio_interval(a, slower)
    assert 1.2 < ratio < 1.4 and low > 1.03
    assert compare.verdict(low, high, 0.03) == "REGRESSION"
    _, low, high = compare.ratio_interval(a, [x * 0.7 for x in a])
    assert compare.verdict(low, high, 0.03) == "faster"


def test_a_small_slowdown_inside_the_tolerance_does_not_fail() -> None:
    a = [100.0, 101.0, 99.0, 100.5, 99.5, 100.0]
    _, low, high = compare.ratio_interval(a, [x * 1.01 for x in a])
    assert compare.verdict(low, high, 0.03) != "REGRESSION"


def test_an_ab_run_against_head_compares_each_case_in_alternating_rounds(tmp_path: Path) -> None:
    status = compare.compare(
        "HEAD", ["risk_check", "marketdata_normalise"], rounds=3, scale=0.05, tolerance=0.5, out=tmp_path
    )
    document = json.loads((tmp_path / "compare.json").read_text())
    assert [r["case"] for r in document["rows"]] == ["risk_check", "marketdata_normalise"]
    for row in document["rows"]:
        assert row["rounds"] == 3 and row["ratio"] > 0 and row["ci95"][0] <= row["ratio"] <= row["ci95"][1], row
    assert {"cpu_model", "cores", "python"} <= set(document["machine"])
    assert "| risk_check |" in (tmp_path / "compare.md").read_text()
    assert status == (1 if any(r["verdict"] == "REGRESSION" for r in document["rows"]) else 0)
    assert not list(compare.WORKTREES.glob("ref-*")), "the worktree is removed afterwards"
