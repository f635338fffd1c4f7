"""The checks over the source tree and the lock: bandit, pip-audit, hadolint, licences, the CycloneDX SBOM.

Each runs the tool as its command line runs it (from .venv/bin, next to this interpreter) and reads its JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.security.report import REPO, Check, Status

BIN = Path(sys.executable).parent
LOCKS = [REPO / "requirements.lock", REPO / "requirements-data.txt"]
BANDIT_TARGETS = ["libs", "services"]  # what ships; tests and tools are not in an image
BANDIT_EXCLUDE = "./libs/contracts/src/trading"  # generated protobuf code


def tool(name: str, *args: str, timeout: float = 300, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def bandit(targets: Sequence[str | Path] = BANDIT_TARGETS) -> Check:
    """Static analysis of libs/ and services/: 0 high-severity findings (medium ones are listed, not failed)."""
    run = tool("bandit", "-q", "-r", *[str(t) for t in targets], "--exclude", BANDIT_EXCLUDE, "-f", "json")
    document = json.loads(run.stdout)
    results = document["results"]
    by_severity = {s: [r for r in results if r["issue_severity"] == s] for s in ("HIGH", "MEDIUM", "LOW")}
    findings = [
        f"{r['issue_severity']} {r['test_id']} {r['filename']}:{r['line_number']} {r['issue_text']}"
        for r in by_severity["HIGH"] + by_severity["MEDIUM"]
    ]
    high = len(by_severity["HIGH"])
    return Check(
        "bandit",
        "0 high-severity findings in libs/ and services/",
        "pass" if high == 0 and not document["errors"] else "fail",
        f"high {high}, medium {len(by_severity['MEDIUM'])}, low {len(by_severity['LOW'])}"
        f" ({document['metrics']['_totals']['loc']} lines; {len(document['errors'])} errors)",
        findings + [f"error {e['filename']}: {e['reason']}" for e in document["errors"]],
        {s.lower(): len(v) for s, v in by_severity.items()},
    )


def pip_audit() -> Check:
    """Known vulnerabilities of every pin in the lock (PyPI's advisory database). A pin the database could not be
    asked about is not audited: when none was, the database was unreachable and the check says so."""
    args = ["--progress-spinner", "off", "--no-deps", "--disable-pip", "-f", "json"]
    for lock in LOCKS:
        args += ["-r", str(lock)]
    run = tool("pip-audit", *args, timeout=600)
    try:
        document = json.loads(run.stdout)
    except json.JSONDecodeError:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("pip-audit", "0 known vulnerabilities", "unavailable", f"could not run: {reason}")
    dependencies = document["dependencies"]
    skipped = [d for d in dependencies if "skip_reason" in d]
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    findings = [
        f"{d['name']}=={d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or ['nothing yet'])})"
        for d in vulnerable
        for v in d["vulns"]
    ]
    figures = {
        "pins": len(dependencies),
        "audited": len(audited),
        "skipped": len(skipped),
        "vulnerable": len(vulnerable),
    }
    if not audited:
        reason = skipped[0]["skip_reason"] if skipped else "no pins"
        return Check(
            "pip-audit",
            "0 known vulnerabilities",
            "unavailable",
            f"vulnerability database not reachable: 0 of {len(dependencies)} pins audited (first: {reason})",
            figures=figures,
        )
    status: Status = "fail" if vulnerable or skipped else "pass"
    findings += [f"not audited: {d['name']}: {d['skip_reason']}" for d in skipped]
    return Check(
        "pip-audit",
        "0 known vulnerabilities; every pin audited",
        status,
        f"{len(vulnerable)} vulnerable of {len(audited)} audited ({len(skipped)} not audited)",
        findings,
        figures,
    )


def dockerfiles() -> list[Path]:
    return sorted(REPO.glob("services/*/Dockerfile"))


def hadolint(files: Sequence[Path] | None = None) -> Check:
    """Every Dockerfile under .hadolint.yaml (failure threshold: warning): 0 findings at warning or above."""
    files = list(files) if files is not None else dockerfiles()
    # hadolint lets the config file's `format: tty` win over --format: run with a copy that leaves it out.
    config = yaml.safe_load((REPO / ".hadolint.yaml").read_text())
    config.pop("format", None)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as copy:
        copy.write(yaml.safe_dump(config))
        copy.flush()
        run = tool("hadolint", "--config", copy.name, "-f", "json", *[str(f) for f in files])
    results = json.loads(run.stdout or "[]")
    serious = [r for r in results if r["level"] in ("error", "warning")]
    return Check(
        "hadolint",
        "0 findings at warning or above in every Dockerfile",
        "pass" if not serious and files else "fail",
        f"{len(serious)} findings over {len(files)} Dockerfiles ({len(results) - len(serious)} info/style)",
        [f"{r['level']} {r['code']} {r['file']}:{r['line']} {r['message']}" for r in results],
        {"dockerfiles": len(files), "findings": len(serious)},
    )


# Licences of what ships (every pin of the lock). Permissive: allowed. Weak copyleft (file-level: MPL, LGPL, EPL):
# allowed unmodified and flagged in the report. Strong copyleft (GPL, AGPL, SSPL) or no known licence: fails.
PERMISSIVE = re.compile(
    r"\b(MIT|BSD|0BSD|Apache|ISC|PSF|Python Software Foundation|Zlib|CC0|Unlicense|BSL-1\.0|Boost|HPND|"
    r"Repoze|DFSG approved|LLVM-exception|MIT-0|MIT-CMU)\b",
    re.IGNORECASE,
)
WEAK_COPYLEFT = re.compile(r"\b(LGPL|Lesser General Public|MPL|Mozilla Public|EPL|Eclipse Public|CDDL)\b", re.I)
STRONG_COPYLEFT = re.compile(r"\b(?<!L)(GPL|AGPL|General Public License|SSPL)\b", re.IGNORECASE)
# Pins whose metadata names no licence, with the licence their project states (checked by hand, with where).
REVIEWED: dict[str, str] = {}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    pins = {}
    for lock in LOCKS:
        for line in lock.read_text().splitlines():
            if "==" in line and not line.lstrip().startswith("#"):
                name, _, version = line.partition("==")
                pins[normalise(name.split("[")[0])] = version.split(";")[0].strip()
    return pins


def classify(licence: str) -> str:
    """permissive, weak-copyleft, strong-copyleft or unknown. `A OR B`: the friendliest; `A AND B`: the strictest."""
    if " OR " in licence:
        order = ["permissive", "weak-copyleft", "strong-copyleft", "unknown"]
        return min((classify(part) for part in licence.split(" OR ")), key=order.index)
    if STRONG_COPYLEFT.search(licence.replace("LGPL", "")) and "Lesser" not in licence:
        return "strong-copyleft"
    if WEAK_COPYLEFT.search(licence):
        return "weak-copyleft"
    if PERMISSIVE.search(licence):
        return "permissive"
    return "unknown"


def licences() -> Check:
    run = tool("pip-licenses", "--from=mixed", "--format=json", "--with-system", "--python", sys.executable)
    installed = {normalise(p["Name"]): p for p in json.loads(run.stdout)}
    pins = locked()
    rows: dict[str, list[str]] = {"permissive": [], "weak-copyleft": [], "strong-copyleft": [], "unknown": []}
    missing = []
    for name, version in sorted(pins.items()):
        package = installed.get(name)
        if package is None:
            missing.append(f"{name}=={version} is pinned but not installed in .venv (licence not read)")
            continue
        licence = REVIEWED.get(name) or package["License"]
        rows[classify(licence)].append(f"{name}=={package['Version']}: {licence}")
    figures = {kind: len(names) for kind, names in rows.items()} | {"pins": len(pins), "not_installed": len(missing)}
    bad = rows["strong-copyleft"] + rows["unknown"] + missing
    return Check(
        "licences",
        "every pin permissive or weak copyleft (MPL/LGPL/EPL, flagged); no GPL/AGPL/SSPL, no unknown licence",
        "fail" if bad else "pass",
        f"{len(pins)} pins: {figures['permissive']} permissive, {figures['weak-copyleft']} weak copyleft (flagged), "
        f"{figures['strong-copyleft']} strong copyleft, {figures['unknown']} unknown",
        [f"FAIL {r}" for r in bad]
        + [f"weak copyleft (allowed, shipped unmodified): {r}" for r in rows["weak-copyleft"]],
        figures,
    )


def sbom(out: Path) -> Check:
    """A CycloneDX 1.6 SBOM of the lock (cyclonedx-py requirements), validated against its schema by the tool;
    every pin must be a component with a purl."""
    out.parent.mkdir(parents=True, exist_ok=True)
    findings = []
    components: dict[str, Any] = {}
    for lock in LOCKS:
        target = out.with_name(f"{out.stem}-{lock.stem}.json") if lock != LOCKS[0] else out
        run = tool(
            "cyclonedx-py", "requirements", str(lock), "--of", "JSON", "--sv", "1.6", "--validate", "-o", str(target)
        )
        if run.returncode != 0:
            findings.append(f"{lock.name}: cyclonedx-py failed: {run.stderr.strip()[-300:]}")
            continue
        document = json.loads(target.read_text())
        if document.get("bomFormat") != "CycloneDX" or document.get("specVersion") != "1.6":
            findings.append(f"{target.name}: not a CycloneDX 1.6 document")
        for component in document.get("components", []):
            components[normalise(component["name"])] = component
    pins = locked()
    for name, version in pins.items():
        component = components.get(name)
        if component is None:
            findings.append(f"{name}=={version} is not in the SBOM")
        elif component.get("version") != version or not component.get("purl", "").startswith("pkg:pypi/"):
            findings.append(f"{name}: SBOM has {component.get('version')} / {component.get('purl')}")
    return Check(
        "sbom",
        "a valid CycloneDX 1.6 document naming every pin of the lock with its version and purl",
        "fail" if findings else "pass",
        f"{len(components)} components for {len(pins)} pins -> {out.relative_to(REPO) if out.is_relative_to(REPO) else out}",
        findings,
        {"components": len(components), "pins": len(pins)},
    )
