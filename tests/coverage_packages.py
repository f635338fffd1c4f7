"""Branch coverage per package from combined coverage data: `python -m tests.coverage_packages` (run by `make coverage`).

Reads the data file coverage's configuration names (COVERAGE_FILE, as `make coverage` sets it), writes the whole
report as JSON and text, and a table with one row per package of libs/ and services/ (statements, branches, what ran,
the percentage as coverage computes it: covered lines and branches over all of them, and the branches alone) plus the
order-path engines, to reports/coverage/ (git-ignored), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import coverage

REPO = Path(__file__).resolve().parents[1]
ENGINES = (
    "services/order-management/src/oms_service/engine.py",
    "services/risk/src/risk_service/engine.py",
    "services/execution/src/execution_service/engine.py",
)


def packages() -> list[str]:
    return sorted(
        str(p.parent.relative_to(REPO))
        for p in [*REPO.glob("libs/*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")]
    )


def row(name: str, files: list[dict]) -> str:
    statements = sum(f["summary"]["num_statements"] for f in files)
    covered = sum(f["summary"]["covered_lines"] for f in files)
    branches = sum(f["summary"]["num_branches"] for f in files)
    taken = sum(f["summary"]["covered_branches"] for f in files)
    total = statements + branches
    percent = f"{100 * (covered + taken) / total:6.1f}%" if total else "     -"
    branch = f"{100 * taken / branches:6.1f}%" if branches else "     -"
    return f"{name:<58} {statements:>6} {covered:>6} {branches:>6} {taken:>6} {percent} {branch}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "coverage", help="where the reports go")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cov = coverage.Coverage(config_file=str(REPO / "pyproject.toml"))
    cov.load()
    cov.json_report(outfile=str(args.out / "coverage.json"))
    with (args.out / "report.txt").open("w") as text:
        cov.report(file=text)
    files = {
        str(Path(name).resolve().relative_to(REPO)) if Path(name).is_absolute() else name: data
        for name, data in json.loads((args.out / "coverage.json").read_text())["files"].items()
    }
    lines = [f"{'package':<58} {'stmts':>6} {'run':>6} {'branch':>6} {'taken':>6}   cover  branch"]
    for package in packages():
        lines.append(row(package, [data for name, data in files.items() if name.startswith(package + "/")]))
    lines.append(row("all of libs/ and services/", list(files.values())))
    lines.append("")
    lines.append("the order-path engines")
    for engine in ENGINES:
        lines.append(row(engine, [files[engine]] if engine in files else []))
    table = "\n".join(lines) + "\n"
    (args.out / "packages.txt").write_text(table)
    sys.stdout.write(table)
    sys.stdout.write(f"(the file-by-file report with the missing lines: {args.out / 'report.txt'})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
