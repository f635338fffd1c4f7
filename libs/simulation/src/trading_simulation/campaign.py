"""Many seeds: one run per seed in a process pool, failures with the command that reproduces each, a JSON summary."""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trading_simulation.world import RunResult, World

DEFAULT_SUMMARY = Path("benchmarks/results/simulation.json")


def reproduce_command(seed: int) -> str:
    return f"make simulate SEED={seed}   # or: .venv/bin/python -m trading_simulation --seed {seed} --verbose"


@dataclass
class Outcome:
    """What a worker sends back for one seed (the trace stays in the worker: a failing seed is re-run to see it)."""

    seed: int
    violations: list[str]
    faults: dict[str, int]
    wall_s: float
    orders: int
    fills: int
    error: str = ""


def run_seed(seed: int) -> Outcome:
    started = time.perf_counter()
    try:
        result = World(seed).run()
    except Exception as error:  # the simulation itself broke: a failure of this seed, reported as such
        return Outcome(seed, [f"simulation error: {type(error).__name__}: {error}"], {}, 0.0, 0, 0, repr(error))
    return Outcome(seed, result.violations, result.faults, time.perf_counter() - started, result.orders, result.fills)


def run_one(seed: int, verbose: bool = False) -> RunResult:
    return World(seed).run(verbose=verbose)


@dataclass
class Summary:
    seeds: int
    first_seed: int
    workers: int
    wall_s: float
    failures: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    per_seed_ms: dict[str, float] = field(default_factory=dict)
    orders: int = 0
    fills: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "first_seed": self.first_seed,
            "failed": len(self.failures),
            "failures": self.failures,
            "faults_injected": dict(sorted(self.faults.items())),
            "orders_at_the_broker": self.orders,
            "fills": self.fills,
            "wall_s": round(self.wall_s, 2),
            "per_seed_ms": self.per_seed_ms,
            "workers": self.workers,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": _load()},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def campaign(
    seeds: Iterable[int], workers: int, on_outcome: Callable[[Outcome], None] | None = None
) -> tuple[Summary, list[Outcome]]:
    seed_list = list(seeds)
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    if workers <= 1:
        results: Iterable[Outcome] = map(run_seed, seed_list)
        for outcome in results:
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    else:
        # Workers are spawned, not forked: a fork copies whatever the caller's process holds (a test run's gRPC
        # channels, Kafka clients and their threads), and a child forked mid-way through those can die at once.
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for outcome in pool.map(run_seed, seed_list, chunksize=max(1, min(50, len(seed_list) // (workers * 8)))):
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
    wall = time.perf_counter() - started
    faults: Counter[str] = Counter()
    for outcome in outcomes:
        faults.update(outcome.faults)
    walls = sorted(o.wall_s * 1000 for o in outcomes)
    summary = Summary(
        seeds=len(seed_list),
        first_seed=seed_list[0] if seed_list else 0,
        workers=workers,
        wall_s=wall,
        failures=[
            {"seed": o.seed, "violations": o.violations, "reproduce": reproduce_command(o.seed)}
            for o in outcomes
            if o.violations
        ],
        faults=dict(faults),
        per_seed_ms={
            "p50": round(walls[len(walls) // 2], 1) if walls else 0.0,
            "p99": round(walls[int(len(walls) * 0.99)], 1) if walls else 0.0,
            "max": round(walls[-1], 1) if walls else 0.0,
        },
        orders=sum(o.orders for o in outcomes),
        fills=sum(o.fills for o in outcomes),
    )
    return summary, outcomes


def write_summary(summary: Summary, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
