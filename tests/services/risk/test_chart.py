"""The risk chart runs one gate that can reach execution's account: more replicas or an autoscaler are refused."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

CHARTS = Path(__file__).resolve().parents[3] / "charts"


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("helm")
    for name in ("risk", "platform-lib"):
        shutil.copytree(CHARTS / name, root / name, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    helm.dependency_update(root / "risk")
    return root / "risk"


def render(chart: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with helm.Chart.load(chart) as loaded:
        manifests = loaded.render(values=values or {}, name="trading", namespace="trading")
    return [
        doc for path, text in manifests.items() if path.endswith(".yaml") for doc in yaml.safe_load_all(text) if doc
    ]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"replicas": 2}, "replicas"),
        ({"autoscaling": {"enabled": True}}, "enabled"),
        ({"autoscaling": {"maxReplicas": 3}}, "maxReplicas"),
        ({"config": {"risk": {"initialEquity": "100000"}}}, "initialEquity"),
    ],
)
def test_more_than_one_gate_is_refused(chart: Path, values: dict[str, Any], problem: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=problem):
        render(chart, values)


def test_one_gate_per_colour_that_reaches_execution(chart: Path) -> None:
    docs = render(chart)
    live = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-blue")]
    assert [d["spec"]["replicas"] for d in live] == [1]
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    [configmap] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "trading-risk"]
    assert configmap["data"]["TRADING_RISK__EXECUTION_ADDRESS"] == "trading-execution:50055"
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy"]
    peers = [
        (rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], rule["ports"][0]["port"])
        for rule in policy["spec"]["egress"]
        if "podSelector" in rule.get("to", [{}])[0]
    ]
    assert ("execution", 50055) in peers
