"""The alert rules file is validated strictly at start-up: an unknown key, a bad threshold or a missing version
stops the service with an error naming the rule and the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from analytics_service.rules import RulesError, load_rules, parse_rules


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as raised:
        parse_rules(text, "rules.yaml")
    return raised.value.problems


def test_the_packaged_rules_are_valid_and_versioned() -> None:
    rules = load_rules()
    assert rules.version
    metrics = {rule.metric for rule in rules.rules.values()}
    assert metrics == {
        "arrival_slippage_bps",
        "fill_ratio",
        "reject_rate",
        "data_quality_score",
        "reconciliation_mismatches",
        "dead_letters",
        "limit_utilisation",
        "consumer_lag",
        "model_drift",
    }
    assert rules.rules["limit_utilisation_high"].above == 0.9


def test_an_unknown_key_names_the_rule_and_the_key() -> None:
    found = problems("version: 1\nrules:\n  slow_fills:\n    metric: fill_ratio\n    below: 0.5\n    treshold: 3\n")
    assert found == ["rules.yaml: rule 'slow_fills': key 'treshold': is not a known key"]


@pytest.mark.parametrize(
    ("rule", "key", "message"),
    [
        ("metric: fill_ratio\n    below: 2", "(the rule)", "a fraction in [0, 1]"),
        ("metric: fill_ratio\n    below: high", "below", "valid number"),
        ("metric: slippage\n    above: 5", "metric", "unknown metric 'slippage'"),
        ("metric: consumer_lag\n    above: 5\n    below: 1", "(the rule)", "exactly one of"),
        ("metric: consumer_lag", "(the rule)", "exactly one of"),
        ("metric: model_drift\n    above: 3\n    clear: 4", "(the rule)", "must not be above"),
        ("metric: model_drift\n    above: 3\n    orders: 5", "(the rule)", "per-order metrics"),
        ("metric: reject_rate\n    above: 0.5\n    orders: 0", "orders", "greater than or equal to 1"),
        ("metric: reject_rate\n    above: 0.5\n    for_s: -1", "for_s", "greater than or equal to 0"),
        ("metric: reject_rate\n    above: 0.5\n    severity: page", "severity", "'info', 'warning' or 'critical'"),
        ("metric: reject_rate\n    above: 0.5\n    summary: '{symbol}'", "summary", "unknown placeholder"),
    ],
)
def test_bad_thresholds_and_values_name_the_rule_and_the_key(rule: str, key: str, message: str) -> None:
    (problem,) = problems(f"version: 3\nrules:\n  my_rule:\n    {rule}\n")
    assert problem.startswith(f"rules.yaml: rule 'my_rule': key '{key}':"), problem
    assert message in problem


def test_the_version_and_at_least_one_rule_are_required() -> None:
    assert problems("rules:\n  a: {metric: fill_ratio, below: 0.5}\n") == ["rules.yaml: key 'version': Field required"]
    assert any("rules" in p for p in problems("version: 2\nrules: {}\n"))
    assert problems("- a list\n") == ["rules.yaml: expected a mapping with `version` and `rules`"]
    assert problems("version: [\n")[0].startswith("rules.yaml: not YAML")


def test_the_service_does_not_start_on_a_bad_rules_file(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: 1\nrules:\n  lag:\n    metric: consumer_lag\n    above: lots\n")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TRADING_")} | {
        "TRADING_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "TRADING_ANALYTICS__RULES_FILE": str(bad),
    }
    result = subprocess.run(
        [sys.executable, "-m", "analytics_service"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert f"{bad}: rule 'lag': key 'above':" in result.stderr


def test_a_missing_rules_file_is_named_by_its_setting(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="TRADING_ANALYTICS__RULES_FILE: cannot read"):
        load_rules(tmp_path / "absent.yaml")
