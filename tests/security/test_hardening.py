"""Hardening: metrics on loopback unless opened, the metrics port open only to the scraper in Kubernetes, the paper
exchange's admin routes and docs behind its admin key, and certificates and tokens reaching pods only through
Vault's Kubernetes auth (the Vault Agent injector, or the Vault Secrets Operator for the paper exchange's keys)."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from paper_exchange.engine import Exchange, ExchangeConfig
from paper_exchange.server import ADMIN_HEADER, ServerConfig, create_app
from paper_exchange.testing import RunningExchange, admin_headers, start_exchange
from trading_platform.devstack import free_port

from tests.security.chart_policy import render, resolved_charts, vault_synced_secrets, violations

SERVICES = ["market-data", "signal", "order-management", "risk", "execution", "audit", "analytics"]
METRICS_PROCESS = """
import sys, time
from trading_platform.observability import setup_observability
from trading_platform.settings import TelemetrySettings
settings = {"metrics_port": int(sys.argv[1])} | ({"metrics_host": sys.argv[2]} if len(sys.argv) > 2 else {})
setup_observability("probe", TelemetrySettings(**settings))
print("up", flush=True)
time.sleep(60)
"""


def outside_address() -> str:
    """An IPv4 address of this machine that is not loopback (how another host would reach it)."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    pytest.skip("this machine has no address besides loopback")


def answers(host: str, port: int) -> bool:
    try:
        return httpx.get(f"http://{host}:{port}/metrics", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def metrics_process() -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> int:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-c", METRICS_PROCESS, str(port), *args], stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "up"
        deadline = time.monotonic() + 10
        while not answers("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.05)
        return port

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_metrics_answer_on_loopback_only_by_default(metrics_process: Any) -> None:
    outside = outside_address()
    port = metrics_process()
    assert answers("127.0.0.1", port)
    assert not answers(outside, port)


def test_the_metrics_host_setting_opens_them(metrics_process: Any) -> None:
    outside = outside_address()
    port = metrics_process("0.0.0.0")
    assert answers(outside, port)


@pytest.fixture(scope="module")
def charts() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield resolved_charts(Path(tmp))


def configmap(docs: list[dict[str, Any]]) -> dict[str, str]:
    return next(d for d in docs if d["kind"] == "ConfigMap")["data"]


def metrics_peers(docs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
    return [r["from"] for r in policy["spec"]["ingress"] if {"port": "metrics", "protocol": "TCP"} in r["ports"]]


@pytest.mark.parametrize("service", SERVICES)
def test_in_kubernetes_the_metrics_port_admits_only_the_scraper(charts: Path, service: str) -> None:
    docs = render(charts / service)
    assert configmap(docs)["TRADING_TELEMETRY__METRICS_HOST"] == "0.0.0.0"
    assert metrics_peers(docs) == [
        [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            }
        ]
    ]
    labels = {"prometheusNamespaceLabels": {"team": "obs"}, "prometheusPodLabels": {"app": "vmagent"}}
    (peer,) = metrics_peers(render(charts / service, {"global": {"networkPolicy": labels}}))[0]
    assert set(peer) == {"namespaceSelector", "podSelector"}  # one peer: both must match
    assert peer["namespaceSelector"]["matchLabels"]["team"] == "obs"
    assert peer["podSelector"]["matchLabels"]["app"] == "vmagent"
    off = render(charts / service, {"metrics": {"enabled": False}})
    assert "TRADING_TELEMETRY__METRICS_HOST" not in configmap(off) and metrics_peers(off) == []


AGENT: dict[str, Any] = {
    "enabled": True,
    "files": {
        "grpc.pem": {
            "path": "pki_int/issue/risk",
            "template": '{{ with secret "pki_int/issue/risk" "common_name=risk" }}{{ .Data.certificate }}{{ end }}',
        }
    },
}


def pod_annotations(docs: list[dict[str, Any]]) -> dict[str, str]:
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    return dict(deployment["spec"]["template"]["metadata"]["annotations"])


def test_files_from_vault_are_mounted_by_the_agent_under_the_services_kubernetes_role(charts: Path) -> None:
    annotations = pod_annotations(render(charts / "risk", {"vault": {"role": "risk-gate", "agent": AGENT}}))
    assert annotations["vault.hashicorp.com/agent-inject"] == "true"
    assert annotations["vault.hashicorp.com/role"] == "risk-gate"
    assert annotations["vault.hashicorp.com/agent-pre-populate"] == "true"
    assert annotations["vault.hashicorp.com/agent-inject-secret-grpc.pem"] == "pki_int/issue/risk"
    assert annotations["vault.hashicorp.com/agent-inject-template-grpc.pem"] == AGENT["files"]["grpc.pem"]["template"]
    docs = render(charts / "risk")
    assert not [k for k in pod_annotations(docs) if k.startswith("vault.hashicorp.com/")]
    env = configmap(docs)
    assert env["TRADING_VAULT__AUTH_METHOD"] == "kubernetes" and env["TRADING_VAULT__KUBERNETES_ROLE"] == "risk"


# A PEM header the schema must refuse as a literal, put together at run time so the tree holds no key-shaped string.
PEM_LITERAL = "-----BEGIN " + "PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"tls.key": {"path": "pki_int/issue/risk", "template": PEM_LITERAL}}, "template"),
        ({"token": {"path": "s.literaltoken"}}, "path"),
    ],
)
def test_a_literal_in_place_of_a_vault_reference_is_refused(charts: Path, files: dict[str, Any], problem: str) -> None:
    with pytest.raises(helm.HelmError if hasattr(helm, "HelmError") else Exception, match=problem):
        render(charts / "risk", {"vault": {"agent": {"enabled": True, "files": files}}})


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_no_chart_takes_a_secret_other_than_through_vault(charts: Path, environment: str) -> None:
    import yaml

    values = yaml.safe_load((charts / "trading-platform" / f"values-{environment}.yaml").read_text())
    values.setdefault("risk", {})["vault"] = {"agent": AGENT}  # and with a file the agent mounts
    docs = render(charts / "trading-platform", values)
    assert violations(docs, vault_synced_secrets()) == []
    assert not [d for d in docs if d["kind"] == "Secret"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for d in docs
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    if environment != "prod":  # the paper exchange: its keys and admin key, synced from Vault by the operator
        assert refs == {
            "PAPER_EXCHANGE_API_KEY_ID": "paper-exchange-keys",
            "PAPER_EXCHANGE_API_SECRET_KEY": "paper-exchange-keys",  # pragma: allowlist secret (a Secret's name)
            "PAPER_EXCHANGE_ADMIN_KEY": "paper-exchange-admin",
        }
    assert set(refs.values()) <= vault_synced_secrets() == {"paper-exchange-keys", "paper-exchange-admin"}


@pytest.fixture(scope="module")
def exchange() -> Iterator[RunningExchange]:
    running = start_exchange(ExchangeConfig(symbols=("AAPL",)))
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("path", ["/admin/faults", "/admin/submissions", "/docs", "/openapi.json", "/redoc"])
def test_admin_routes_and_docs_need_the_admin_key(exchange: RunningExchange, path: str) -> None:
    url = f"{exchange.url}{path}"
    refused = httpx.get(url, timeout=10)
    assert refused.status_code == 401 and ADMIN_HEADER in refused.json()["message"]
    assert httpx.get(url, headers=admin_headers("not-the-key"), timeout=10).status_code == 403
    api_keys = {"APCA-API-KEY-ID": exchange.key_id, "APCA-API-SECRET-KEY": exchange.secret_key}
    assert httpx.get(url, headers=api_keys, timeout=10).status_code == 401  # trading keys are not admin keys
    assert httpx.get(url, headers=admin_headers(exchange.admin_key), timeout=10).status_code == 200


def test_the_admin_key_changes_nothing_else(exchange: RunningExchange) -> None:
    assert httpx.get(f"{exchange.url}/healthz", timeout=10).status_code == 200
    assert (
        httpx.get(f"{exchange.url}/v2/clock", headers=admin_headers(exchange.admin_key), timeout=10).status_code == 401
    )
    before = exchange.admin("GET", "faults")["latency_ms"]
    assert httpx.put(f"{exchange.url}/admin/faults", json={"latency_ms": 5}, timeout=10).status_code == 401
    assert exchange.admin("GET", "faults")["latency_ms"] == before  # the refused request changed nothing


def test_an_exchange_without_an_admin_key_refuses_every_admin_route() -> None:
    app = create_app(Exchange(ExchangeConfig(symbols=("AAPL",))), ServerConfig("PKID", "secret"))  # no admin_key
    with TestClient(app) as client:
        for path in ("/admin/faults", "/docs", "/openapi.json"):
            response = client.get(path, headers=admin_headers(""))
            assert response.status_code == 403 and "no admin key" in response.json()["message"], path
        assert client.get("/healthz").status_code == 200
