"""Charts and k8s/ manifests, offline: render every chart with helm-python-sdk under each environment and cloud file
and each blue-green mode, lint them, validate the manifests against the Kubernetes schemas, and check the policy
every workload must meet (docs/architecture.md section 9): non-root, read-only, probes, resources, labels, Vault references only,
the live colour behind the Service, the idle colour in the shadow role, and settings the service accepts.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
K8S = REPO / "k8s"
KUBE_VERSION = "1.30.0"
SERVICES = ["market-data", "signal", "order-management", "risk", "execution", "audit", "analytics"]
CHARTED = [*SERVICES, "paper-exchange", "gateway"]
UMBRELLA = "trading-platform"
ENVIRONMENTS = ["dev", "staging", "prod"]
CLOUDS = ["eks", "gke", "aks"]
SETTINGS = {
    "market-data": "marketdata_service.config:MarketDataSettings",
    "signal": "signal_service.config:SignalSettings",
    "order-management": "oms_service.config:OmsSettings",
    "risk": "risk_service.config:RiskSettings",
    "execution": "execution_service.config:ExecutionSettings",
    "audit": "audit_service.config:AuditSettings",
    "analytics": "analytics_service.config:AnalyticsSettings",
}
# Custom resources: kubernetes-validate has no schema for them; their apiVersion, kind and metadata are checked.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("argoproj.io/v1alpha1", "Rollout"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
    ("kafka.strimzi.io/v1beta2", "KafkaUser"),
    ("ray.io/v1", "RayCluster"),
    ("ray.io/v1", "RayJob"),
    ("secrets.hashicorp.com/v1beta1", "VaultAuth"),
    ("secrets.hashicorp.com/v1beta1", "VaultStaticSecret"),
}
WORKLOAD_KINDS = {"Deployment", "Rollout"}
STANDARD_LABELS = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
]
SECRET_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD")


@pytest.fixture(scope="session", autouse=True)
def _cached_kubernetes_schemas() -> Any:
    """kubernetes-validate re-reads its large definitions file on every call; read each schema file once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_validate.utils, "schema_contents", functools.cache(kubernetes_validate.utils.schema_contents)
        )
        yield


@pytest.fixture(scope="session")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of charts/ with the file:// dependencies resolved (helm dependency update), so the tree stays clean."""
    root = tmp_path_factory.mktemp("helm") / "charts"
    shutil.copytree(CHARTS, root, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    for name in CHARTED:
        helm.dependency_update(root / name)
    helm.dependency_update(root / UMBRELLA)
    return root


@functools.cache
def values_file(name: str) -> dict[str, Any]:
    return yaml.safe_load((CHARTS / UMBRELLA / f"values-{name}.yaml").read_text())


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep merge as helm does with several -f files (later wins; lists are replaced)."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def render(chart_dir: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with helm.Chart.load(chart_dir) as chart:
        manifests = chart.render(values=values or {}, name="trading", namespace="trading")
    return [
        doc
        for path, text in manifests.items()
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def service_values(service: str, *files: str) -> dict[str, Any]:
    """What the umbrella passes a service chart under the given values files (global + the service's key)."""
    layers = [values_file(f) for f in files]
    merged = merge(*layers)
    return {"global": merged.get("global", {}), **merged.get(service, {})}


@functools.cache
def _validate_core(text: str) -> None:
    kubernetes_validate.validate(json.loads(text), KUBE_VERSION, strict=True)


def validate(doc: dict[str, Any]) -> None:
    assert doc.get("apiVersion") and doc.get("kind"), doc
    assert doc["metadata"].get("name"), doc
    if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
        assert isinstance(doc.get("spec", doc.get("resources")), dict | list), doc["metadata"]["name"]
        return
    _validate_core(json.dumps(doc, sort_keys=True))


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]


def check_policy(docs: list[dict[str, Any]]) -> None:
    """The rules every rendered workload and Service must meet."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        validate(doc)
        by_kind.setdefault(doc["kind"], []).append(doc)
        labels = doc["metadata"].get("labels", {})
        missing = [label for label in STANDARD_LABELS if label not in labels]
        assert not missing, f"{doc['kind']} {doc['metadata']['name']} lacks labels {missing}"
    config = {cm["metadata"]["name"]: cm.get("data", {}) for cm in by_kind.get("ConfigMap", [])}
    for name, data in config.items():
        for key, value in data.items():
            if any(word in key for word in SECRET_WORDS):
                assert value.startswith("vault:"), f"{name}: {key} must be a vault: reference"
    for workload in [d for d in docs if d["kind"] in WORKLOAD_KINDS]:
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in containers(workload):
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{name}: {kind}"
            assert "readinessProbe" in container and "livenessProbe" in container, name
            assert {"/tmp"} <= {m["mountPath"] for m in container["volumeMounts"]}, name
            for env in container.get("env", []):
                if any(word in env["name"] for word in SECRET_WORDS):
                    value = env.get("value")
                    from_secret = "secretKeyRef" in env.get("valueFrom", {})
                    assert from_secret or (value or "").startswith("vault:"), f"{name}: {env['name']} is a literal"


def deployments_of(docs: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["labels"]["app.kubernetes.io/name"] == service
    ]


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in containers(deployment)[0].get("env", [])}


def check_blue_green(docs: list[dict[str, Any]], service: str, active: str = "blue") -> None:
    idle = "green" if active == "blue" else "blue"
    deployments = {d["metadata"]["labels"]["trading.platform/colour"]: d for d in deployments_of(docs, service)}
    assert set(deployments) == {"blue", "green"}, service
    for colour, deployment in deployments.items():
        assert deployment["metadata"]["name"] == f"trading-{service}-{colour}"
        env = env_of(deployment)
        assert env["TRADING_DEPLOYMENT__COLOUR"] == colour
        assert env["TRADING_DEPLOYMENT__ROLE"] == ("live" if colour == active else "shadow"), (service, colour)
    services = {s["metadata"]["name"]: s for s in docs if s["kind"] == "Service"}
    assert services[f"trading-{service}"]["spec"]["selector"]["trading.platform/colour"] == active
    assert services[f"trading-{service}-preview"]["spec"]["selector"]["trading.platform/colour"] == idle


def check_settings(docs: list[dict[str, Any]], service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a pod gets is accepted by the service's own settings class (a wrong key stops it)."""
    module, _, cls = SETTINGS[service].partition(":")
    settings_cls = getattr(importlib.import_module(module), cls)
    configmap = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == f"trading-{service}")
    for deployment in deployments_of(docs, service):
        with monkeypatch.context() as patch:
            for name in [n for n in os.environ if n.startswith("TRADING_")]:
                patch.delenv(name)
            for name, value in {**configmap["data"], **env_of(deployment)}.items():
                patch.setenv(name, value)
            settings = settings_cls()
        assert settings.grpc.host == "0.0.0.0"
        assert settings.vault.auth_method == "kubernetes"
        assert settings.deployment.role == env_of(deployment)["TRADING_DEPLOYMENT__ROLE"]


# --- the service charts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chart", [*CHARTED, UMBRELLA, "platform-lib"])
def test_chart_lints_clean(charts: Path, chart: str) -> None:
    report = helm.lint(charts / chart, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, problems or report["errors"]


@pytest.mark.parametrize("env", [None, *ENVIRONMENTS])
@pytest.mark.parametrize("service", SERVICES)
def test_service_chart_renders_blue_green(charts: Path, service: str, env: str | None, monkeypatch) -> None:
    docs = render(charts / service, service_values(service, env) if env else None)
    check_policy(docs)
    blue_green = (service_values(service, env) if env else {}).get("blueGreen", {}).get("enabled", True)
    if blue_green:
        check_blue_green(docs, service)
    else:
        [deployment] = deployments_of(docs, service)
        assert env_of(deployment)["TRADING_DEPLOYMENT__ROLE"] == "live"
    check_settings(docs, service, monkeypatch)


@pytest.mark.parametrize("service", SERVICES)
def test_switching_the_active_colour_moves_the_service_and_the_roles(charts: Path, service: str, monkeypatch) -> None:
    docs = render(charts / service, {"blueGreen": {"activeColour": "green", "idleReplicas": 0}})
    check_policy(docs)
    check_blue_green(docs, service, active="green")
    idle = next(d for d in deployments_of(docs, service) if d["metadata"]["name"].endswith("-blue"))
    assert idle["spec"]["replicas"] == 0
    check_settings(docs, service, monkeypatch)


@pytest.mark.parametrize("service", SERVICES)
def test_blue_green_off_renders_one_live_deployment(charts: Path, service: str) -> None:
    docs = render(charts / service, {"blueGreen": {"enabled": False}})
    check_policy(docs)
    [deployment] = deployments_of(docs, service)
    assert deployment["metadata"]["name"] == f"trading-{service}"
    assert env_of(deployment)["TRADING_DEPLOYMENT__ROLE"] == "live"
    assert not [d for d in docs if d["metadata"]["name"].endswith("-preview")]


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "audit"])
def test_argo_rollouts_replace_the_deployments(charts: Path, service: str) -> None:
    docs = render(charts / service, {"argoRollouts": {"enabled": True}, "serviceMonitor": {"enabled": True}})
    check_policy(docs)
    assert not deployments_of(docs, service)
    [rollout] = [d for d in docs if d["kind"] == "Rollout"]
    strategy = rollout["spec"]["strategy"]["blueGreen"]
    assert strategy["activeService"] == f"trading-{service}"
    assert strategy["previewService"] == f"trading-{service}-preview"
    assert strategy["autoPromotionEnabled"] is False
    role = next(e for e in containers(rollout)[0]["env"] if e["name"] == "TRADING_DEPLOYMENT__ROLE")
    assert role["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['trading.platform/role']"
    assert rollout["spec"]["template"]["metadata"]["labels"]["trading.platform/role"] == "shadow"
    assert {d["kind"] for d in docs} >= {"ServiceMonitor", "Service", "NetworkPolicy", "PodDisruptionBudget"}


def test_argo_rollouts_refuse_the_shared_audit_ledger(charts: Path) -> None:
    with pytest.raises(helm.HelmRenderError, match="one volume per colour"):
        render(charts / "audit", {"argoRollouts": {"enabled": True}})


def test_audit_keeps_one_ledger_volume_per_colour(charts: Path) -> None:
    docs = render(charts / "audit", {"global": {"storageClass": "gp3"}})
    claims = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
    assert set(claims) == {"trading-audit-blue-data", "trading-audit-green-data"}
    assert all(c["spec"]["storageClassName"] == "gp3" for c in claims.values())
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in claims.values())
    for deployment in deployments_of(docs, "audit"):
        colour = deployment["metadata"]["labels"]["trading.platform/colour"]
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] == f"trading-audit-{colour}-data"


def test_both_colours_follow_the_live_colour_at_run_time(charts: Path) -> None:
    docs = render(charts / "order-management")
    by_colour = {
        d["metadata"]["labels"]["trading.platform/colour"]: d for d in deployments_of(docs, "order-management")
    }
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert configmap["TRADING_OMS__RISK_ADDRESS"] == "trading-risk:50054"
    for colour, role in (("blue", "live"), ("green", "shadow")):
        env = env_of(by_colour[colour])
        # the same addresses in both roles (the idle colour asks the live risk gate with dry_run)
        assert "TRADING_OMS__RISK_ADDRESS" not in env
        assert env["TRADING_DEPLOYMENT__BLUE_GREEN"] == "true"
        assert env["TRADING_DEPLOYMENT__COLOUR"] == colour and env["TRADING_DEPLOYMENT__ROLE"] == role


def test_network_policies_allow_only_the_platform_flows(charts: Path) -> None:
    def policy(service: str) -> dict[str, Any]:
        return next(d for d in render(charts / service) if d["kind"] == "NetworkPolicy")["spec"]

    risk = policy("risk")
    assert risk["policyTypes"] == ["Ingress", "Egress"]
    callers = [peer for peer in risk["ingress"][0]["from"] if "podSelector" in peer]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in callers] == ["order-management"]
    assert {"trading.platform/operators": "true"} in [
        p["namespaceSelector"]["matchLabels"] for p in risk["ingress"][0]["from"] if "namespaceSelector" in p
    ]
    oms_peers = [
        r["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for r in policy("order-management")["egress"]
        if "to" in r
    ]
    assert oms_peers == ["risk", "execution"]
    for service in ("market-data", "execution"):
        egress = policy(service)["egress"]
        assert any(
            r.get("to", [{}])[0].get("ipBlock") and r["ports"] == [{"port": 443, "protocol": "TCP"}] for r in egress
        )
    assert not any("ipBlock" in str(r) for r in policy("signal")["egress"])


def test_every_platform_call_a_policy_lets_out_is_let_in_by_the_callee(charts: Path) -> None:
    """An egress rule to another platform service is useless unless that service's ingress admits the caller: risk
    reads the day's equity from execution, so execution must admit risk, or risk denies every order in Kubernetes."""
    services = [p.name for p in charts.iterdir() if (p / "Chart.yaml").exists() and p.name != "platform-lib"]
    policies = {}
    for service in services:
        docs = [d for d in render(charts / service) if d.get("kind") == "NetworkPolicy"]
        if docs and docs[0]["spec"].get("ingress"):
            policies[service] = docs[0]["spec"]
    assert {"risk", "execution", "order-management"} <= set(policies)
    checked = 0
    for caller, spec in policies.items():
        for rule in spec.get("egress", []):
            peer = rule.get("to", [{}])[0].get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            if peer not in policies:
                continue
            admitted = [
                p["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
                for r in policies[peer]["ingress"]
                for p in r.get("from", [])
                if "podSelector" in p
            ]
            assert caller in admitted, f"{caller} may call {peer}, but {peer}'s NetworkPolicy does not admit it"
            checked += 1
    assert checked >= 3  # order-management -> risk, order-management -> execution, risk -> execution


def test_paper_exchange_takes_its_keys_from_a_secret(charts: Path) -> None:
    docs = render(charts / "paper-exchange")
    check_policy(docs)
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    container = containers(deployment)[0]
    assert container["command"] == ["python", "-m", "paper_exchange"]
    assert container["args"][:4] == ["--host", "0.0.0.0", "--port", "8700"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["PAPER_EXCHANGE_API_KEY_ID"] == {"name": "paper-exchange-keys", "key": "api_key_id"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def gateway_settings(docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The settings the gateway's pod starts with: the chart's environment through its own settings class."""
    from gateway_service.config import GatewaySettings

    configmap = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "trading-gateway")
    [deployment] = deployments_of(docs, "gateway")
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("TRADING_")]:
            patch.delenv(name)
        for name, value in {**configmap["data"], **env_of(deployment)}.items():
            patch.setenv(name, value)
        return GatewaySettings()


@pytest.mark.parametrize("env", [None, *ENVIRONMENTS])
def test_gateway_chart_runs_one_rolling_deployment_its_settings_accept(
    charts: Path, env: str | None, monkeypatch
) -> None:
    values = service_values("gateway", env) if env else None
    docs = render(charts / "gateway", values)
    check_policy(docs)
    [deployment] = deployments_of(docs, "gateway")
    assert deployment["metadata"]["name"] == "trading-gateway"
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert not [d for d in docs if d["metadata"]["name"].endswith("-preview")]
    container = containers(deployment)[0]
    assert container["command"] == ["python", "-m", "gateway_service"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 50057, "health": 8086, "http": 8080, "metrics": 9107}
    assert container["readinessProbe"]["grpc"] == {"port": 8086}  # plaintext health: the gRPC port is mTLS
    [service] = [d for d in docs if d["kind"] == "Service"]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"grpc": 50057, "http": 8080, "metrics": 9107}
    settings = gateway_settings(docs, monkeypatch)
    assert (settings.gateway.host, settings.gateway.port) == ("0.0.0.0", 8080)
    assert settings.vault.auth_method == "kubernetes" and settings.vault.kubernetes_role == "gateway"
    assert settings.deployment.role == "live" and settings.deployment.blue_green is False
    assert settings.telemetry.metrics_port == 9107
    kinds = {d["kind"] for d in docs}
    assert {"PodDisruptionBudget", "NetworkPolicy", "ServiceAccount"} <= kinds
    assert ("HorizontalPodAutoscaler" in kinds) == (env == "prod")
    assert ("Ingress" in kinds) == (env in ("staging", "prod"))
    if env in ("staging", "prod"):
        assert settings.gateway.trusted_proxies == "*"  # the ingress controller's X-Forwarded-For


def test_gateway_network_policy_admits_http_from_the_ingress_controller_and_metrics_from_the_scraper(
    charts: Path,
) -> None:
    docs = render(
        charts / "gateway", {"networkPolicy": {"httpFromNamespaceLabels": {"kubernetes.io/metadata.name": "edge"}}}
    )
    [policy] = [d["spec"] for d in docs if d["kind"] == "NetworkPolicy"]
    by_port = {rule["ports"][0]["port"]: rule["from"] for rule in policy["ingress"]}
    assert set(by_port) == {"grpc", "http", "metrics"}
    operators = {"namespaceSelector": {"matchLabels": {"trading.platform/operators": "true"}}}
    assert by_port["http"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}}},
        operators,
    ]
    assert by_port["grpc"] == [operators]  # health only: no platform pod calls it
    assert by_port["metrics"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    # egress: DNS, then Kafka, Redis and Vault; no other pod, no address block
    assert [sorted(p["port"] for p in rule["ports"]) for rule in policy["egress"]] == [[53, 53], [6379, 8200, 9092]]
    assert not any("to" in rule for rule in policy["egress"])


def test_gateway_ingress_is_off_by_default_and_serves_tls_only(charts: Path) -> None:
    assert not [d for d in render(charts / "gateway") if d["kind"] == "Ingress"]
    with pytest.raises(helm.HelmRenderError, match="ingress.tls.secretName is required"):
        render(charts / "gateway", {"ingress": {"enabled": True}})
    values = {"ingress": {"enabled": True, "hosts": ["id.example.org"], "tls": {"secretName": "id-tls"}}}
    docs = render(charts / "gateway", values)
    check_policy(docs)
    [ingress] = [d for d in docs if d["kind"] == "Ingress"]
    assert ingress["spec"]["tls"] == [{"hosts": ["id.example.org"], "secretName": "id-tls"}]
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert rule["host"] == "id.example.org" and backend == {"name": "trading-gateway", "port": {"name": "http"}}


def test_gateway_logs_in_to_vault_as_its_own_role(charts: Path) -> None:
    values = {"vault": {"agent": {"enabled": True, "files": {"ca.pem": {"path": "pki_int/cert/ca"}}}}}
    docs = render(charts / "gateway", values)
    check_policy(docs)
    [deployment] = deployments_of(docs, "gateway")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["vault.hashicorp.com/role"] == "gateway"
    assert annotations["vault.hashicorp.com/agent-inject-secret-ca.pem"] == "pki_int/cert/ca"
    [account] = [d for d in docs if d["kind"] == "ServiceAccount"]
    roles = (K8S / "vault" / "roles.sh").read_text()
    # roles.sh binds role <service> to the ServiceAccount <release>-<service>: the chart's default name
    assert (
        account["metadata"]["name"] == "trading-gateway" and 'bound_service_account_names="$RELEASE-$service"' in roles
    )


@pytest.mark.parametrize(
    ("chart", "values", "problem"),
    [
        ("risk", {"replicas": "two"}, "replicas"),
        ("risk", {"config": {"risk": {"maxOrderQuantitty": "5"}}}, "maxOrderQuantitty"),
        ("execution", {"config": {"broker": {"apiKeyId": "PKLITERALKEY"}}}, "apiKeyId"),
        ("order-management", {"replicas": 2}, "replicas"),
        ("signal", {"blueGreen": {"activeColour": "red"}}, "activeColour"),
        ("paper-exchange", {"exchange": {"source": "nasdaq"}}, "source"),
        (UMBRELLA, {"risk": {"enabled": True, "replicas": "two"}}, "replicas"),
        (UMBRELLA, {"gateway": {"enabled": True, "replicas": "two"}}, "replicas"),
        ("gateway", {"config": {"gateway": {"accessTokenTtlS": 5}}}, "accessTokenTtlS"),
        ("gateway", {"config": {"gateway": {"port": 9000}}}, "port"),  # the listener comes from http.port
        ("gateway", {"config": {"kafka": {"password": "hunter2hunter2"}}}, "password"),
        ("gateway", {"ingress": {"enabled": True, "tls": {"secretName": "-----BEGIN CERTIFICATE-----"}}}, "secretName"),
        ("gateway", {"blueGreen": {"enabled": True}}, "blueGreen"),
    ],
)
def test_values_schema_rejects_bad_values(charts: Path, chart: str, values: dict[str, Any], problem: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=problem):
        render(charts / chart, values)


# --- the umbrella chart --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", [None, *CLOUDS])
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_umbrella_renders_each_environment_on_each_cloud(charts: Path, env: str, cloud: str | None) -> None:
    files = [env, cloud] if cloud else [env]
    values = merge(*[values_file(f) for f in files])
    docs = render(charts / UMBRELLA, values)
    check_policy(docs)
    names = {d["metadata"]["labels"]["app.kubernetes.io/name"] for d in docs if d["kind"] == "Deployment"}
    assert names == set(SERVICES) | {"gateway"} | ({"paper-exchange"} if env != "prod" else set())
    if env != "dev":
        for service in SERVICES:
            check_blue_green(docs, service)
    if cloud:
        accounts = [d for d in docs if d["kind"] == "ServiceAccount"]
        key = {
            "eks": "eks.amazonaws.com/role-arn",
            "gke": "iam.gke.io/gcp-service-account",
            "aks": "azure.workload.identity/client-id",
        }[cloud]
        assert all(key in a["metadata"]["annotations"] for a in accounts)
        claims = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
        assert claims and {c["spec"]["storageClassName"] for c in claims} == {
            {"eks": "gp3", "gke": "premium-rwo", "aks": "managed-csi"}[cloud]
        }
        balancers = [d for d in docs if d["kind"] == "Service" and d["spec"]["type"] == "LoadBalancer"]
        assert all(b["metadata"].get("annotations") for b in balancers)
    if env == "prod":
        assert any(d["kind"] == "HorizontalPodAutoscaler" for d in docs)
        assert len([d for d in docs if d["kind"] == "ServiceMonitor"]) == len(SERVICES) + 1  # and the gateway's
    if env != "dev":
        [ingress] = [d for d in docs if d["kind"] == "Ingress"]
        assert ingress["spec"]["tls"][0]["secretName"] == "trading-gateway-tls"


def test_umbrella_condition_disables_a_service(charts: Path) -> None:
    docs = render(charts / UMBRELLA, {"audit": {"enabled": False}, "paper-exchange": {"enabled": True}})
    names = {d["metadata"]["labels"]["app.kubernetes.io/name"] for d in docs}
    assert "audit" not in names and "paper-exchange" in names


# --- k8s/ -----------------------------------------------------------------------------------------------------------


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(path.relative_to(REPO)), doc)
        for path in sorted(K8S.rglob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_k8s_manifests_validate() -> None:
    documents = k8s_documents()
    kinds = {doc["kind"] for _, doc in documents}
    assert {"Namespace", "NetworkPolicy", "KafkaTopic", "KafkaUser", "RayCluster", "RayJob", "StorageClass"} <= kinds
    for path, doc in documents:
        try:
            validate(doc)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path}: {error}")


def test_namespaces_enforce_the_restricted_pod_security_profile() -> None:
    namespaces = {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == "Namespace"}
    assert set(namespaces) == {"trading", "trading-operators"}
    for namespace in namespaces.values():
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespaces["trading-operators"]["metadata"]["labels"]["trading.platform/operators"] == "true"


def test_ray_pods_run_as_non_root() -> None:
    for _, doc in k8s_documents():
        if doc["kind"] not in {"RayCluster", "RayJob"}:
            continue
        spec = doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]
        for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
            pod = group["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            for container in pod["containers"]:
                assert container["securityContext"]["allowPrivilegeEscalation"] is False
                assert {"requests", "limits"} <= set(container["resources"])


def test_vault_policies_are_least_privilege() -> None:
    alpaca = 'path "secret/data/trading/alpaca"'
    readers = {p.stem for p in (K8S / "vault").glob("*.hcl") if alpaca in p.read_text()}
    assert readers == {"market-data", "execution", "paper-exchange"}
    assert {p.stem for p in (K8S / "vault").glob("*.hcl")} == {*CHARTED, "kafka-users"}
    roles = (K8S / "vault" / "roles.sh").read_text()
    assert 'bound_service_account_namespaces="$NAMESPACE"' in roles and "ttl=1h" in roles
    assert "gateway" in roles.split("for service in", 1)[1].splitlines()[0], "the gateway needs its Kubernetes role"
    own = ("secret/data/trading/gateway/", "secret/metadata/trading/gateway/")
    for policy in (K8S / "vault").glob("*.hcl"):
        rules = vault_rules(policy.read_text())
        assert rules, policy.name
        for path, capabilities in rules.items():
            writes = capabilities & {"create", "update", "delete", "patch", "sudo"}
            if path.startswith("pki_int/issue/"):  # issuing a certificate is a write: only its own, only that
                assert path == f"pki_int/issue/{policy.stem}" and capabilities == {"update"}, (policy.name, path)
            elif policy.stem == "gateway":
                # the gateway writes (rotation, the JWKS, consuming the bootstrap secret) and reads only its subtree
                assert path.startswith(own) and "*" not in path.removeprefix(own[0]).removeprefix(own[1])[:-1], path
            else:
                assert not writes, f"{policy.name}: {path} may {sorted(writes)}"
    gateway = vault_rules((K8S / "vault" / "gateway.hcl").read_text())
    assert gateway["secret/data/trading/gateway/*"] >= {"create", "read", "update"}
    # Every gRPC service starts by issuing its own mTLS certificate and verifies user tokens against the gateway's
    # JWKS: a policy without either cannot start in Kubernetes (the dev stack writes the same two rules).
    for service in [*SERVICES, "gateway"]:
        rules = vault_rules((K8S / "vault" / f"{service}.hcl").read_text())
        assert rules.get(f"pki_int/issue/{service}") == {"update"}, service
        jwks = rules.get("secret/data/trading/gateway/jwks") or rules.get("secret/data/trading/gateway/*", set())
        assert "read" in jwks, service


def vault_rules(text: str) -> dict[str, set[str]]:
    """`path "<p>" { capabilities = [...] }` blocks of a Vault policy as {path: capabilities}."""
    return {
        match[0]: set(re.findall(r'"([a-z]+)"', match[1]))
        for match in re.findall(r'path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}', text)
    }


def test_committed_kafka_topics_are_current() -> None:
    from tradectl import k8s
    from trading_platform.topics import TOPICS

    committed = (K8S / "topics" / k8s.TOPICS_FILE).read_text()
    assert committed == k8s.render_topics(), "run `tradectl k8s topics` to refresh k8s/topics/kafkatopics.yaml"
    topics = [doc for doc in yaml.safe_load_all(committed) if doc]
    names = {t["spec"]["topicName"] for t in topics}
    assert len(topics) == 3 * len(TOPICS)
    assert {"oms.events.v1", "oms.events.v1.dlq", "shadow.oms.events.v1"} <= names
    events = next(t for t in topics if t["metadata"]["name"] == "oms.events.v1")
    assert events["spec"]["config"]["retention.ms"] == -1


def test_committed_kafka_users_are_current_and_least_privilege() -> None:
    from tradectl import k8s

    committed = (K8S / "kafka-users" / k8s.USERS_FILE).read_text()
    assert committed == k8s.render_users(), "run `tradectl k8s users` to refresh k8s/kafka-users/kafkausers.yaml"
    users = {d["metadata"]["name"]: d for d in yaml.safe_load_all(committed) if d and d["kind"] == "KafkaUser"}
    assert set(users) == {
        "market-data",
        "signal",
        "order-management",
        "risk",
        "execution",
        "audit",
        "gateway",
        "analytics",
        "tradectl",
    }

    def writers(topic: str) -> set[str]:
        return {
            name
            for name, user in users.items()
            for acl in user["spec"]["authorization"]["acls"]
            if acl["resource"] == {"type": "topic", "name": topic, "patternType": "literal"}
            and "Write" in acl["operations"]
        }

    assert writers("oms.commands.v1") == {"order-management"}
    assert writers("risk.decisions.v1") == {"risk"}
    for user in users.values():
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert "value" not in user["spec"]["authentication"]["password"], "passwords come from Vault, never literal"
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl["resource"].get("name") not in ("*", ""), "no wildcard grants"


@pytest.mark.parametrize("service", [*SERVICES, "gateway"])
def test_probes_use_the_plaintext_health_port_not_the_mtls_grpc_port(charts: Path, service: str) -> None:
    """The gRPC port asks every caller for a client certificate of the platform's CA, which a kubelet probe cannot
    present: a probe there never passes. The probes use grpc.healthPort, which the service serves health alone on."""
    docs = render(charts / service)
    config = next(d for d in docs if d["kind"] == "ConfigMap" and "TRADING_GRPC__PORT" in d.get("data", {}))["data"]
    health = int(config["TRADING_GRPC__HEALTH_PORT"])
    assert health != int(config["TRADING_GRPC__PORT"])
    workloads = [d for d in docs if d["kind"] == "Deployment"]
    assert workloads
    for workload in workloads:
        container = containers(workload)[0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == health, (workload["metadata"]["name"], probe)
        assert {"name": "health", "containerPort": health, "protocol": "TCP"} in container["ports"]
    with pytest.raises(Exception, match="healthPort"):  # the schema (or the template) names it
        render(charts / service, {"grpc": {"port": 50051, "healthPort": None}})
