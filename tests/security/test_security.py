"""The fast parts of `make security` as tests: each check passes on the tree, and each one fails on a planted
problem (so a pass means something)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.security import chart_policy, report, secrets_scan, static


def test_bandit_finds_no_high_severity_issue_in_what_ships() -> None:
    check = static.bandit()
    assert check.status == "pass", check.findings


def test_bandit_fails_on_a_high_severity_issue(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import subprocess\n\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)\n")
    check = static.bandit([tmp_path])
    assert check.status == "fail" and check.figures["high"] == 1, check.findings
    assert "B602" in check.findings[0]


def test_the_tree_holds_no_secret() -> None:
    check = secrets_scan.tree_secrets()
    assert check.status == "pass", check.findings
    assert not [f for f in check.findings if f.startswith("allow-list entry no longer matches")], check.findings


# An obviously fake AWS-shaped key, put together at run time so that no key-shaped string is tracked in the tree.
PLANTED_AWS_KEY = "AKIA" + "FAKE" * 2 + "0" * 8


def test_the_secrets_scan_finds_a_planted_key_and_skips_vault_references(tmp_path: Path) -> None:
    planted = tmp_path / "settings.env"
    planted.write_text(
        f'AWS_ACCESS_KEY_ID={PLANTED_AWS_KEY}\napi_secret_key = "vault:secret/trading/alpaca#api_secret_key"\n'
    )
    hits = secrets_scan.scan([planted], root=tmp_path)
    assert [(h["line_number"], h["type"]) for h in hits] == [(1, "AWS Access Key")]


def test_every_dockerfile_passes_hadolint() -> None:
    check = static.hadolint()
    assert check.status == "pass" and check.figures["dockerfiles"] >= 7, check.findings


def test_hadolint_fails_on_a_bad_dockerfile(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:latest\nRUN apt-get install curl\n")
    check = static.hadolint([dockerfile])
    assert check.status == "fail"
    assert {"DL3007", "DL3008"} <= {f.split()[1] for f in check.findings}, check.findings


def test_the_charts_meet_the_policy() -> None:
    check = chart_policy.chart_policy()
    assert check.status == "pass" and check.figures["workloads"] > 0, check.findings


def test_the_chart_policy_names_each_violation() -> None:
    container = {
        "name": "app",
        "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": False, "allowPrivilegeEscalation": False},
        "resources": {"requests": {"cpu": "1"}},
        "env": [{"name": "API_TOKEN", "value": "abc"}],
        "ports": [{"name": "metrics", "containerPort": 9100}],
    }
    labels = {"app.kubernetes.io/name": "x"}
    workload = {
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    }
    policy = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "x"},
        "spec": {
            "podSelector": {"matchLabels": labels},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]}],
        },
    }
    found = chart_policy.violations([workload, policy, {"kind": "Secret", "metadata": {"name": "s"}}], set())
    text = "\n".join(found)
    for problem in (
        "a chart renders a Secret",
        "securityContext.runAsNonRoot is not true",
        "root filesystem is writable",
        "capabilities not all dropped",
        "no cpu and memory requests",
        "no cpu and memory limits",
        "no readinessProbe",
        "no livenessProbe",
        "API_TOKEN is a literal value",
        "not only the scraper",
    ):
        assert problem in text, (problem, found)
    assert "no NetworkPolicy selects" in "\n".join(chart_policy.violations([workload], set()))


@pytest.mark.parametrize(
    ("licence", "kind"),
    [
        ("MIT License", "permissive"),
        ("Apache-2.0 AND BSD-3-Clause", "permissive"),
        ("Mozilla Public License 2.0 (MPL 2.0)", "weak-copyleft"),
        ("GNU Lesser General Public License v3 (LGPLv3)", "weak-copyleft"),
        ("GNU General Public License v3 (GPLv3)", "strong-copyleft"),
        ("AGPL-3.0-only", "strong-copyleft"),
        ("GPL-2.0-or-later OR MIT", "permissive"),
        ("MIT AND GPL-3.0", "strong-copyleft"),
        ("UNKNOWN", "unknown"),
    ],
)
def test_licences_are_classified(licence: str, kind: str) -> None:
    assert static.classify(licence) == kind


def test_every_pin_has_an_allowed_licence() -> None:
    check = static.licences()
    assert check.status == "pass", check.findings
    assert check.figures["pins"] == len(static.locked()) and check.figures["not_installed"] == 0


def test_the_sbom_names_every_pin(tmp_path: Path) -> None:
    check = static.sbom(tmp_path / "sbom.cdx.json")
    assert check.status == "pass", check.findings
    document = json.loads((tmp_path / "sbom.cdx.json").read_text())
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    names = {c["name"].lower() for c in document["components"]}
    assert {"grpcio", "fastapi", "hvac"} <= names


AUDITED = [{"name": "requests", "version": "2.34.2", "vulns": []}]
SKIPPED = {"name": "jinja2", "version": "3.1.6", "skip_reason": "Dependency not found on PyPI and could not be audited"}


@pytest.mark.parametrize(
    ("dependencies", "answers", "status", "said"),
    [
        (AUDITED, {}, "pass", "0 vulnerable of 1 audited (1 by pip-audit, 0 on PyPI's project endpoint"),
        # pip-audit could not look a pin up; PyPI's project endpoint answers for it (its latest release): audited.
        ([*AUDITED, SKIPPED], {"jinja2": []}, "pass", "0 vulnerable of 2 audited (1 by pip-audit, 1 on PyPI's"),
        ([*AUDITED, SKIPPED], {"jinja2": [{"id": "GHSA-x", "fix_versions": ["3.1.7"]}]}, "fail", "1 vulnerable of 2"),
        ([SKIPPED], {}, "unavailable", "vulnerability database not reachable: 0 of 1 pins audited"),
        ([*AUDITED, SKIPPED], {}, "unavailable", "partial: 0 vulnerable of 1 audited"),
    ],
    ids=["all audited", "audited on the project endpoint", "a known vulnerability", "nothing answers", "partial"],
)
def test_pip_audit_passes_only_when_every_pin_is_audited_and_none_is_vulnerable(
    dependencies: list[dict[str, object]], answers: dict[str, list[dict[str, object]]], status: str, said: str
) -> None:
    asked: list[tuple[str, str]] = []

    def lookup(name: str, version: str) -> list[dict[str, object]] | None:
        asked.append((name, version))
        return answers.get(name)

    check = static.audit_result(dependencies, lookup)
    assert check.status == status and said in check.summary, check
    assert asked == [(d["name"], d["version"]) for d in dependencies if "skip_reason" in d]  # only what was skipped
    if status == "fail":
        assert check.findings == ["jinja2==3.1.6: GHSA-x (fixed in 3.1.7)"]
    if "partial" in said:
        assert check.findings == ["not audited (no per-version lookup here, and not the latest release): jinja2==3.1.6"]


def test_the_report_scores_and_fails_below_its_thresholds(tmp_path: Path) -> None:
    checks = [
        report.Check("a", "t", "pass", "ok"),
        report.Check("b", "t", "fail", "bad", ["one finding"]),
        report.Check("c", "t", "unavailable", "database not reachable"),
    ]
    assert report.score(checks) == 50.0
    assert report.failed(checks, set()) == ["b"]
    assert report.failed(checks, {"c"}) == ["b", "c"]
    written = json.loads(report.write(checks, {"c"}, tmp_path).read_text())
    assert written["score"] == 50.0 and written["failed"] == ["b", "c"]
    assert "database not reachable" in (tmp_path / "report.md").read_text()


def test_the_runtime_scan_reads_json_lines_and_finds_a_planted_key(tmp_path: Path) -> None:
    from tests.security.stack_scan import distinct_strings

    lines = [
        json.dumps({"event": "order accepted", "trace_id": "0af7651916cd43dd8448eb211c80319c", "level": "INFO"}),
        json.dumps({"event": "connected", "aws_key": PLANTED_AWS_KEY}),
        "a plain line",
        "a plain line",
    ]
    strings = distinct_strings("\n".join(lines))
    # one word in lower case ("connected") is an enum-like name: no active plugin would flag it
    expected = [
        'event = "order accepted"',
        f'aws_key = "{PLANTED_AWS_KEY}"',
        "a plain line",
    ]  # pragma: allowlist secret
    assert strings == expected
    (tmp_path / "log.txt").write_text("\n".join(strings) + "\n")
    hits = secrets_scan.scan([tmp_path / "log.txt"], runtime=True, root=tmp_path)
    assert [(h["line_number"], h["type"]) for h in hits] == [(2, "AWS Access Key")]


def test_the_vault_banner_is_allowed_only_in_an_owner_only_vault_log(tmp_path: Path) -> None:
    from tests.security.stack_scan import root_token_banner

    log = tmp_path / "logs" / "vault.log"
    log.parent.mkdir()
    log.write_text("Root Token: dev-root-abc\n")
    log.chmod(0o600)
    assert root_token_banner(tmp_path, "log vault.log", "vault root token")
    assert not root_token_banner(tmp_path, "log risk.log", "vault root token")
    assert not root_token_banner(tmp_path, "log vault.log", "secret/trading/alpaca#api_secret_key")
    log.chmod(0o644)
    assert not root_token_banner(tmp_path, "log vault.log", "vault root token")
