"""Shared helpers for benchmarks: percentiles and the results file."""

from __future__ import annotations

import json
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def latency_summary(samples_ns: Sequence[int | float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max in microseconds over the samples."""
    values = np.asarray(samples_ns, dtype=np.float64) / 1_000.0
    return {
        "samples": len(values),
        "p50_us": round(float(np.percentile(values, 50)), 2),
        "p90_us": round(float(np.percentile(values, 90)), 2),
        "p99_us": round(float(np.percentile(values, 99)), 2),
        "p99_9_us": round(float(np.percentile(values, 99.9)), 2),
        "max_us": round(float(values.max()), 2),
        "mean_us": round(float(values.mean()), 2),
    }


def most_in_any_window(times: Sequence[float], window: float) -> int:
    """The most events in any span shorter than window (times and window in one unit)."""
    ordered, best, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def write_results(name: str, figures: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    document = {
        "benchmark": name,
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "figures": figures,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"{name}: {json.dumps(figures)}")
    print(f"wrote {path}")
    return path
