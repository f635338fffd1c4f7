"""The monitoring the charts ship: the analytics chart's PrometheusRule and its Grafana dashboards. Helm renders
them, the dashboards' JSON parses, and every PromQL expression (rules and panels) names only metrics the platform's
code defines (prometheus_client Counter, Gauge, Histogram in libs/ and services/; histogram and counter series
suffixes included), so a renamed metric cannot leave a rule that never fires."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "analytics"
METRIC = re.compile(r'(?:Counter|Gauge|Histogram|Summary)\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"', re.S)
# PromQL words that are not metric names: functions, aggregations and their modifiers, keywords.
PROMQL = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "irate", "histogram_quantile",
    "clamp_min", "clamp_max", "abs", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "le",
    "offset", "bool", "topk", "bottomk", "delta", "deriv", "absent",
}  # fmt: skip


def defined_metrics() -> set[str]:
    names: set[str] = set()
    for source in [*REPO.glob("libs/*/src/**/*.py"), *REPO.glob("services/*/src/**/*.py")]:
        for name in METRIC.findall(source.read_text()):
            base = name.removesuffix("_total")
            names |= {name, base + "_total", base + "_bucket", base + "_count", base + "_sum"}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression: identifiers outside label matchers, strings and durations that are
    not functions, aggregations or label names in by (...)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"(?<![a-zA-Z0-9_:])\d[\d.]*(?:e[-+]?\d+)?", "", text)  # numbers (1e-9)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text))
    return words - PROMQL


def render(chart: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(chart) as loaded:
        manifests = loaded.render(values=values, name="trading", namespace="trading")
    texts = [text for name, text in manifests.items() if name.endswith((".yaml", ".yml"))]
    return [doc for text in texts for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    root = tmp_path_factory.mktemp("helm") / "charts"
    shutil.copytree(REPO / "charts", root, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    helm.dependency_update(root / "analytics")
    return render(root / "analytics", {})


def test_the_metric_name_parser_finds_names_and_only_names() -> None:
    expr = 'sum by (job, method) (rate(rpc_server_calls_total{code!="OK"}[5m])) / clamp_min(up, 1e-9) > 0.05'
    assert metric_names(expr) == {"rpc_server_calls_total", "up"}
    assert "analytics_consumer_lag" in defined_metrics()
    assert "execution_slippage_bps_bucket" in defined_metrics()
    assert "rpc_server_calls_total" in defined_metrics()


def test_the_prometheus_rules_render_and_name_existing_metrics(docs: list[dict[str, Any]]) -> None:
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    names = {r["alert"] for r in alerts}
    assert {"TradingConsumerLagHigh", "TradingGrpcErrorRate", "TradingAnalyticsAlertsFiring"} <= names
    known = defined_metrics()
    for alert in alerts:
        used = metric_names(str(alert["expr"]))
        assert used and used <= known, (alert["alert"], sorted(used - known))
        assert alert["labels"]["severity"] in ("info", "warning", "critical")
        assert "{{ $labels" in alert["annotations"]["summary"] or "$labels" not in alert["annotations"]["summary"]
    lag = next(r for r in alerts if r["alert"] == "TradingConsumerLagHigh")
    assert lag["expr"].endswith("> 1000")


def test_the_grafana_dashboards_parse_and_name_existing_metrics(docs: list[dict[str, Any]]) -> None:
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard")]
    files = {name: body for cm in maps for name, body in cm["data"].items()}
    assert set(files) == {p.name for p in (CHART / "dashboards").glob("*.json")} == {"analytics.json", "platform.json"}
    known = defined_metrics()
    for name, body in files.items():
        dashboard = json.loads(body)
        assert dashboard["uid"] and dashboard["panels"], name
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                used = metric_names(target["expr"])
                assert used and used <= known, (name, panel["title"], sorted(used - known))


def test_monitoring_can_be_switched_off(tmp_path: Path) -> None:
    root = tmp_path / "charts"
    shutil.copytree(REPO / "charts", root, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    helm.dependency_update(root / "analytics")
    values = {"prometheusRule": {"enabled": False}, "grafanaDashboards": {"enabled": False}}
    kinds = {doc["kind"] for doc in render(root / "analytics", values)}
    assert "PrometheusRule" not in kinds
    assert "ConfigMap" in kinds  # the service's own settings remain
    with pytest.raises(helm.HelmValuesError, match="lagThreshold"):
        render(root / "analytics", {"prometheusRule": {"lagThreshold": 0}})
