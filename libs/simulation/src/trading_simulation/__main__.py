"""`python -m trading_simulation`: run seeds of the order-path simulation (`make simulate`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from trading_simulation.campaign import DEFAULT_SUMMARY, campaign, reproduce_command, run_one, write_summary

DESCRIPTION = """\
A deterministic simulation of the order path. The real order-management, risk and execution services and the paper
exchange's matching engine run in one process on an in-memory bus, driven by a seeded scheduler that reorders,
duplicates, delays and drops messages, crashes and restarts components (keeping only the event logs and committed
offsets), and injects broker 5xx, 429, timeouts, lost responses and dropped streams. After each run a checker looks
at approvals, duplicate submits, positions, fills and the rebuilt book (docs/reliability.md).
"""
EPILOG = """\
examples:
  python -m trading_simulation --seeds 10000            run seeds 0..9999 on every core, summary to %(summary)s
  python -m trading_simulation --seed 1234 --verbose    one seed, with its schedule trace and the services' logs
  python -m trading_simulation --seeds 500 --json       the summary as JSON on stdout

exit code: 0 when every seed held every invariant, 1 when one did not, 2 for bad arguments.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trading_simulation",
        description=DESCRIPTION,
        epilog=EPILOG % {"summary": DEFAULT_SUMMARY},
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--seed", type=int, help="run this one seed (deterministic: the same seed, the same run)")
    which.add_argument("--seeds", type=int, default=1000, help="how many seeds to run (default 1000)")
    p.add_argument("--first", type=int, default=0, help="the first seed of --seeds (default 0)")
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: every core); 1 = in-process"
    )
    p.add_argument(
        "--verbose", action="store_true", help="with --seed: print the schedule trace and the services' logs"
    )
    p.add_argument("--json", action="store_true", help="print the summary (or the one run) as JSON on stdout")
    p.add_argument(
        "--summary",
        type=Path,
        default=DEFAULT_SUMMARY,
        help=f"where the JSON summary of --seeds goes (default {DEFAULT_SUMMARY})",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console(stderr=args.json, soft_wrap=True)
    if args.seed is not None:
        return _one(args.seed, args.verbose, args.json, console)
    if args.seeds <= 0:
        parser().error("--seeds must be positive")
    if args.workers <= 0:
        parser().error("--workers must be positive")
    seeds = range(args.first, args.first + args.seeds)
    failed: list[int] = []
    with Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("seeds", total=len(seeds), failed=0)

        def seen(outcome: object) -> None:
            if outcome.violations:  # type: ignore[attr-defined]
                failed.append(outcome.seed)  # type: ignore[attr-defined]
            progress.update(task, advance=1, failed=len(failed))

        summary, _ = campaign(seeds, args.workers, seen)
    write_summary(summary, args.summary)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    for failure in summary.failures:
        console.print(f"[red]seed {failure['seed']} failed[/red]: {failure['violations'][0]}")
        for more in failure["violations"][1:3]:
            console.print(f"    {more}")
        console.print(f"    reproduce: {failure['reproduce']}")
    console.print(
        f"{summary.seeds} seeds, {len(summary.failures)} failed, {summary.wall_s:.1f} s on {summary.workers} workers "
        f"(per seed p50 {summary.per_seed_ms['p50']} ms); faults: "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary.faults.items()))
        + f"; summary in {args.summary}"
    )
    return 1 if summary.failures else 0


def _one(seed: int, verbose: bool, as_json: bool, console: Console) -> int:
    result = run_one(seed, verbose=verbose)
    if as_json:
        print(
            json.dumps(
                {
                    "seed": seed,
                    "ok": result.ok,
                    "violations": result.violations,
                    "faults_injected": result.faults,
                    "steps": result.steps,
                    "trace": result.trace if verbose else [],
                },
                indent=2,
            )
        )
    else:
        if verbose:
            for line in result.trace:
                console.print(line, markup=False, highlight=False)
        for violation in result.violations:
            console.print(f"[red]violated[/red] {violation}")
        state = "held every invariant" if result.ok else f"failed {len(result.violations)} checks"
        console.print(f"seed {seed}: {state}; faults: {result.faults}")
        if not result.ok and not verbose:
            console.print(f"trace: {reproduce_command(seed)}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
