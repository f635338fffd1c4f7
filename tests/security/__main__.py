"""`make security` / `python -m tests.security [--skip NAME ...] [--only NAME ...] [--require NAME ...]`.

Runs every check (report.Check: its threshold, status, findings), writes reports/security/report.{json,md} and the
SBOM, prints the table, and exits 1 when a check fails or a `--require`d check could not run (unavailable)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from tests.security import chart_policy, report, secrets_scan, stack_scan, static

CHECKS: dict[str, Callable[[], report.Check]] = {
    "bandit": static.bandit,
    "secrets-tree": secrets_scan.tree_secrets,
    "hadolint": static.hadolint,
    "chart-policy": chart_policy.chart_policy,
    "licences": static.licences,
    "sbom": lambda: static.sbom(report.REPORT_DIR / "sbom.cdx.json"),
    "pip-audit": static.pip_audit,
    "secrets-stack": stack_scan.stack_secrets,
}
FAST = ["bandit", "secrets-tree", "hadolint", "chart-policy", "licences", "sbom"]


def run(names: list[str]) -> list[report.Check]:
    checks = []
    for name in names:
        started = time.monotonic()
        try:
            check = CHECKS[name]()
        except Exception as error:  # a check that breaks fails; the others still run
            check = report.Check(name, "runs", "fail", f"the check itself failed: {type(error).__name__}: {error}")
        check.seconds = round(time.monotonic() - started, 1)
        print(f"{check.status:>11}  {name}: {check.summary} ({check.seconds} s)", flush=True)
        checks.append(check)
    return checks


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.security", description=__doc__)
    parser.add_argument("--only", nargs="+", choices=list(CHECKS), help="run these checks only")
    parser.add_argument("--skip", nargs="+", default=[], choices=list(CHECKS), help="leave these checks out")
    parser.add_argument("--fast", action="store_true", help=f"the checks without network or a stack: {FAST}")
    parser.add_argument(
        "--require", nargs="+", default=[], choices=list(CHECKS), help="fail when these checks are unavailable"
    )
    args = parser.parse_args(argv)
    names = args.only or (FAST if args.fast else list(CHECKS))
    names = [n for n in names if n not in args.skip]
    checks = run(names)
    path = report.write(checks, set(args.require))
    failed = report.failed(checks, set(args.require))
    print(f"score {report.score(checks)}% ({len(checks)} checks); report {path} and {path.with_suffix('.md')}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
