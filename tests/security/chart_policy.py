"""Policy over what the charts render (helm-python-sdk, offline): the umbrella chart under each environment's values.

Every workload: runs as non-root with a read-only root filesystem, no privilege escalation and every capability
dropped; has CPU and memory requests and limits, and readiness and liveness probes; takes no secret as a literal
(a secret-named variable is a `vault:` reference or comes from a Secret that k8s/vault/ syncs from Vault through
Vault's Kubernetes auth); is selected by a NetworkPolicy; and its metrics port admits only the scraper (Prometheus's
namespace and pod labels); files the Vault Agent injector mounts come from Vault paths through templates under a
Kubernetes-auth role. No chart renders a Secret."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from tests.security.report import REPO, Check

CHARTS = REPO / "charts"
UMBRELLA = "trading-platform"
ENVIRONMENTS = ["dev", "staging", "prod"]
WORKLOAD_KINDS = {"Deployment", "Rollout", "StatefulSet", "DaemonSet"}
SECRET_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "CREDENTIAL")


def resolved_charts(into: Path) -> Path:
    """A copy of charts/ with the file:// dependencies resolved, so the tree stays clean."""
    root = into / "charts"
    shutil.copytree(CHARTS, root, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    for chart in sorted(p.parent for p in root.glob("*/Chart.yaml")):
        if chart.name not in ("platform-lib", UMBRELLA):
            helm.dependency_update(chart)
    helm.dependency_update(root / UMBRELLA)
    return root


def render(chart: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with helm.Chart.load(chart) as loaded:
        manifests = loaded.render(values=values or {}, name="trading", namespace="trading")
    return [
        doc
        for path, text in manifests.items()
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def vault_synced_secrets() -> set[str]:
    """Secrets that the Vault Secrets Operator writes from Vault (VaultStaticSecret with a kubernetes VaultAuth)."""
    docs = [d for f in sorted((REPO / "k8s" / "vault").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    auths = {d["metadata"]["name"] for d in docs if d["kind"] == "VaultAuth" and d["spec"]["method"] == "kubernetes"}
    return {
        d["spec"]["destination"]["name"]
        for d in docs
        if d["kind"] == "VaultStaticSecret" and d["spec"].get("vaultAuthRef") in auths
    }


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def violations(docs: list[dict[str, Any]], synced: set[str]) -> list[str]:
    out = []
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    for doc in docs:
        name = f"{doc['kind']} {doc['metadata']['name']}"
        if doc["kind"] == "Secret":
            out.append(f"{name}: a chart renders a Secret (secrets come from Vault)")
        for key, value in configmaps.get(doc["metadata"]["name"], {}).items() if doc["kind"] == "ConfigMap" else []:
            if any(w in key for w in SECRET_WORDS) and not str(value).startswith("vault:"):
                out.append(f"{name}: {key} is a literal, not a vault: reference")
        if doc["kind"] not in WORKLOAD_KINDS:
            continue
        pod = doc["spec"]["template"]["spec"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
            out.append(f"{name}: pod securityContext.runAsNonRoot is not true")
        for container in pod["containers"] + pod.get("initContainers", []):
            where = f"{name} container {container['name']}"
            security = container.get("securityContext", {})
            if security.get("runAsNonRoot") is not True or security.get("runAsUser") == 0:
                out.append(f"{where}: may run as root")
            if security.get("readOnlyRootFilesystem") is not True:
                out.append(f"{where}: root filesystem is writable")
            if security.get("allowPrivilegeEscalation") is not False:
                out.append(f"{where}: privilege escalation allowed")
            if security.get("capabilities", {}).get("drop") != ["ALL"]:
                out.append(f"{where}: capabilities not all dropped")
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(container.get("resources", {}).get(kind, {})):
                    out.append(f"{where}: no cpu and memory {kind}")
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    out.append(f"{where}: no {probe}")
            for env in container.get("env", []):
                if not any(w in env["name"] for w in SECRET_WORDS):
                    continue
                if "value" in env and not str(env["value"]).startswith("vault:"):
                    out.append(f"{where}: {env['name']} is a literal value")
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in synced:
                    out.append(f"{where}: {env['name']} reads Secret {ref['name']}, which no VaultStaticSecret syncs")
        out += _vault_agent(doc["spec"]["template"]["metadata"].get("annotations", {}), name)
        selecting = [p for p in policies if _selects(p, labels)]
        if not selecting:
            out.append(f"{name}: no NetworkPolicy selects its pods")
        ports = {p["name"]: p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}
        if "metrics" in ports:
            for policy in selecting:
                out += _metrics_rules(policy, name)
    return out


def _vault_agent(annotations: dict[str, str], workload: str) -> list[str]:
    """Files the Vault Agent injector renders come from Vault paths through templates, under a Kubernetes-auth role."""
    if annotations.get("vault.hashicorp.com/agent-inject") != "true":
        return []
    out = [] if annotations.get("vault.hashicorp.com/role") else [f"{workload}: Vault Agent injection without a role"]
    for key, value in annotations.items():
        if key.startswith("vault.hashicorp.com/agent-inject-secret-") and not re.fullmatch(r"[a-z0-9_-]+/\S+", value):
            out.append(f"{workload}: {key} is not a Vault path: {value!r}")
        if key.startswith("vault.hashicorp.com/agent-inject-template-") and "{{" not in value:
            out.append(f"{workload}: {key} is a literal, not a template reading Vault")
    return out


def _metrics_rules(policy: dict[str, Any], workload: str) -> list[str]:
    out = []
    for rule in policy["spec"].get("ingress", []):
        ports = {p.get("port") for p in rule.get("ports", [])}
        if "metrics" not in ports and rule.get("ports"):
            continue
        peers = rule.get("from", [])
        if not peers:
            out.append(f"{workload}: NetworkPolicy {policy['metadata']['name']} admits anyone to the metrics port")
        for peer in peers:
            if not (peer.get("namespaceSelector") and peer.get("podSelector", {}).get("matchLabels")):
                out.append(
                    f"{workload}: NetworkPolicy {policy['metadata']['name']} admits the metrics port from {peer}, "
                    "not only the scraper (namespace and pod labels)"
                )
    return out


def chart_policy() -> Check:
    synced = vault_synced_secrets()
    findings: list[str] = []
    workloads = 0
    with tempfile.TemporaryDirectory() as tmp:
        charts = resolved_charts(Path(tmp))
        for environment in ENVIRONMENTS:
            values = yaml.safe_load((charts / UMBRELLA / f"values-{environment}.yaml").read_text())
            docs = render(charts / UMBRELLA, values)
            workloads += sum(d["kind"] in WORKLOAD_KINDS for d in docs)
            findings += [f"{environment}: {v}" for v in violations(docs, synced)]
    return Check(
        "chart-policy",
        "0 violations: non-root, read-only root fs, resources, probes, no literal secrets, NetworkPolicy on every "
        "workload, metrics port only from the scraper",
        "fail" if findings or not workloads else "pass",
        f"{len(findings)} violations over {workloads} workloads in {len(ENVIRONMENTS)} environments",
        findings,
        {"workloads": workloads, "violations": len(findings)},
    )
