"""One check's outcome, the score over all checks, and the report files (reports/security/, git-ignored)."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[2]
REPORT_DIR = REPO / "reports" / "security"

Status = Literal["pass", "fail", "unavailable"]


@dataclass
class Check:
    """`unavailable`: the check could not run here (e.g. its database is unreachable). It is not counted as a pass;
    `--require` names checks for which unavailable fails the run (CI, where the network answers)."""

    name: str
    threshold: str
    status: Status
    summary: str
    findings: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def score(checks: list[Check]) -> float:
    """Percent of the checks that ran and met their threshold; unavailable checks are not counted either way."""
    counted = [c for c in checks if c.status != "unavailable"]
    return round(100.0 * sum(c.status == "pass" for c in counted) / len(counted), 1) if counted else 0.0


def failed(checks: list[Check], required: set[str]) -> list[str]:
    return [c.name for c in checks if c.status == "fail" or (c.status == "unavailable" and c.name in required)]


def commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return result.stdout.strip()


def write(checks: list[Check], required: set[str], directory: Path = REPORT_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
        "score": score(checks),
        "failed": failed(checks, required),
        "required": sorted(required),
        "checks": [asdict(c) for c in checks],
    }
    (directory / "report.json").write_text(json.dumps(document, indent=2) + "\n")
    (directory / "report.md").write_text(markdown(checks, required, document))
    return directory / "report.json"


def markdown(checks: list[Check], required: set[str], document: dict[str, Any]) -> str:
    lines = [
        f"# make security: score {document['score']}% (commit {document['commit']}, {document['recorded_at']})",
        "",
        "| check | status | threshold | result | s |",
        "|---|---|---|---|---|",
    ]
    for c in checks:
        lines.append(f"| {c.name} | {c.status} | {c.threshold} | {c.summary} | {c.seconds:.1f} |")
    for c in checks:
        if c.findings:
            lines += ["", f"## {c.name}", "", *[f"- {f}" for f in c.findings[:200]]]
    verdict = "FAILED: " + ", ".join(document["failed"]) if document["failed"] else "passed"
    return "\n".join([*lines, "", verdict, ""])
