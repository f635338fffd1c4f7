"""The simulation of the order path: 500 seeds hold every invariant, a seed replays exactly, and the command line
does what its help says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from trading_simulation.campaign import campaign
from trading_simulation.world import World

FAULT_KINDS = {
    "crash",
    "broker_5xx",
    "broker_429",
    "broker_timeout",
    "lost_response",
    "stream_dropped",
    "redelivery",
    "update_reordered",
    "update_duplicated",
    "rpc_lost",
    "rpc_delayed",
    "decision_lost",
    "transaction_abort",
    "delay",
}


def test_five_hundred_seeds_hold_every_invariant() -> None:
    summary, outcomes = campaign(range(500), workers=2)
    assert summary.failures == [], "\n".join(
        f"seed {f['seed']}: {f['violations'][0]}  ({f['reproduce']})" for f in summary.failures
    )
    # not vacuous: orders reached the broker and filled, and every kind of fault was injected
    assert summary.orders >= 500 and summary.fills >= 500, (summary.orders, summary.fills)
    assert FAULT_KINDS <= set(summary.faults), FAULT_KINDS - set(summary.faults)
    assert len(outcomes) == 500


def test_a_seed_replays_exactly() -> None:
    first, second = World(23).run(verbose=True), World(23).run(verbose=True)
    assert first.trace == second.trace
    assert (first.violations, first.faults) == (second.violations, second.faults)
    assert World(24).run(verbose=True).trace != first.trace


def test_a_seed_replays_exactly_in_another_process() -> None:
    here = World(23).run(verbose=True)
    out = subprocess.run(
        [sys.executable, "-m", "trading_simulation", "--seed", "23", "--verbose", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    there = json.loads(out.stdout)
    assert there["trace"] == here.trace
    assert there["faults_injected"] == here.faults


def test_the_command_line_runs_seeds_writes_the_summary_and_names_how_to_reproduce(tmp_path: Path) -> None:
    summary_path = tmp_path / "simulation.json"
    command = [sys.executable, "-m", "trading_simulation", "--seeds", "6", "--first", "40", "--workers", "1"]
    out = subprocess.run(
        [*command, "--json", "--summary", str(summary_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    written = json.loads(summary_path.read_text())
    assert printed["seeds"] == written["seeds"] == 6
    assert written["first_seed"] == 40 and written["failed"] == 0
    assert set(written) >= {"faults_injected", "wall_s", "per_seed_ms", "failures", "machine"}
    helped = subprocess.run(
        [sys.executable, "-m", "trading_simulation", "--help"], capture_output=True, text=True, check=True
    )
    for words in ("--seed", "--seeds", "--verbose", "--json", "exit code"):
        assert words in helped.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "trading_simulation", "--seeds", "0"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "--seeds must be positive" in bad.stderr
