"""The checks over the source tree and the lock: bandit, pip-audit, hadolint, licences, the CycloneDX SBOM.

Each runs the tool as its command line runs it (from .venv/bin, next to this interpreter) and reads its JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.security.report import REPO, Check

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


PYPI_PROJECT = "https://pypi.org/pypi/{name}/json"
Lookup = Callable[[str, str], "list[dict[str, Any]] | None"]


def latest_release_advisories(name: str, version: str) -> list[dict[str, Any]] | None:
    """PyPI's advisories for a pin that is its project's latest release: the project endpoint's `vulnerabilities` are
    the latest release's (PyPI's JSON API). None when the pin is older, or the index does not answer."""
    from packaging.version import InvalidVersion, Version

    try:
        answer = httpx.get(PYPI_PROJECT.format(name=name), timeout=30, follow_redirects=True)
        if answer.status_code != 200:
            return None
        document = answer.json()
        if Version(document["info"]["version"]) != Version(version):
            return None
    except (httpx.HTTPError, ValueError, KeyError, InvalidVersion):
        return None
    return [{"id": v["id"], "fix_versions": v.get("fixed_in") or []} for v in document.get("vulnerabilities") or []]


def pip_audit() -> Check:
    """Known vulnerabilities of every pin in the lock (PyPI's advisory database), by pip-audit. A pin pip-audit could
    not look up (an index that answers no per-version queries) is looked up on PyPI's project endpoint, which answers
    for the latest release only; a pin neither answers is not audited, and the check says how many."""
    args = ["--progress-spinner", "off", "--no-deps", "--disable-pip", "-f", "json"]
    for lock in LOCKS:
        args += ["-r", str(lock)]
    run = tool("pip-audit", *args, timeout=600)
    try:
        document = json.loads(run.stdout)
    except json.JSONDecodeError:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("pip-audit", "0 known vulnerabilities", "unavailable", f"could not run: {reason}")
    pins = locked()  # a pin pip-audit skips is reported without its version
    dependencies = [{"version": pins.get(normalise(d["name"]), ""), **d} for d in document["dependencies"]]
    return audit_result(dependencies, latest_release_advisories)


def audit_result(dependencies: list[dict[str, Any]], lookup: Lookup) -> Check:
    """The check from pip-audit's JSON `dependencies`: pass when every pin was audited and none is vulnerable; fail on
    any known vulnerability; unavailable when some pins could not be audited (and none of those audited is
    vulnerable), saying how many were."""
    skipped = [d for d in dependencies if "skip_reason" in d]
    by_pip_audit = [d for d in dependencies if "skip_reason" not in d]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda d: lookup(d["name"], d["version"]), skipped))
    by_project = [{**d, "vulns": vulns} for d, vulns in zip(skipped, answers, strict=True) if vulns is not None]
    not_audited = [d for d, vulns in zip(skipped, answers, strict=True) if vulns is None]
    audited = by_pip_audit + by_project
    vulnerable = [d for d in audited if d.get("vulns")]
    findings = [
        f"{d['name']}=={d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or ['nothing yet'])})"
        for d in vulnerable
        for v in d["vulns"]
    ]
    figures = {
        "pins": len(dependencies),
        "audited": len(audited),
        "audited_by_pip_audit": len(by_pip_audit),
        "audited_latest_release_only": len(by_project),
        "not_audited": len(not_audited),
        "vulnerable": len(vulnerable),
    }
    threshold = "0 known vulnerabilities; every pin audited"
    how = f"{len(by_pip_audit)} by pip-audit, {len(by_project)} on PyPI's project endpoint (latest releases)"
    if vulnerable:
        summary = f"{len(vulnerable)} vulnerable of {len(audited)} audited ({how}; {len(not_audited)} not audited)"
        return Check("pip-audit", threshold, "fail", summary, findings, figures)
    if not audited:
        reason = skipped[0]["skip_reason"] if skipped else "no pins"
        summary = f"vulnerability database not reachable: 0 of {len(dependencies)} pins audited (first: {reason})"
        return Check("pip-audit", threshold, "unavailable", summary, figures=figures)
    summary = f"0 vulnerable of {len(audited)} audited ({how})"
    if not_audited:
        pins = ", ".join(f"{d['name']}=={d['version']}" for d in not_audited)
        return Check(
            "pip-audit",
            threshold,
            "unavailable",
            f"partial: {summary}; {len(not_audited)} of {len(dependencies)} pins could not be looked up here",
            [f"not audited (no per-version lookup here, and not the latest release): {pins}"],
            figures,
        )
    return Check("pip-audit", threshold, "pass", summary, figures=figures)


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
