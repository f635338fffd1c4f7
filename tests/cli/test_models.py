"""tradectl models: list, show, promote and rollback against a registry, each with --json; errors say what to do."""

from __future__ import annotations

import json
from pathlib import Path

from tradectl.main import app
from trading_policy import ModelRegistry
from trading_policy.testing import register_linear_policy
from typer.testing import CliRunner

runner = CliRunner()
WEIGHTS = [0.1] * 6


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_list_show_promote_rollback(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    register_linear_policy(registry, "trend-ppo", WEIGHTS, metrics={"sharpe": 0.8})
    register_linear_policy(registry, "trend-ppo", WEIGHTS, bias=0.2, promote=None)
    root = ("--registry", str(tmp_path))

    code, out = run("models", "list", *root, "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["version"], r["stages"]) for r in rows] == [("1", ["production"]), ("2", [])]
    assert rows[0]["metrics"] == {"sharpe": 0.8}

    code, out = run("models", "show", "trend-ppo", *root, "--json")
    assert code == 0 and json.loads(out)["version"] == "1"

    code, out = run("models", "promote", "trend-ppo", "2", "--reason", "better", *root, "--json")
    assert code == 0 and json.loads(out)["to"] == "2"
    assert registry.get("trend-ppo").version == "2"

    code, out = run("models", "rollback", "trend-ppo", *root, "--json")
    assert code == 0 and json.loads(out)["to"] == "1" and registry.get("trend-ppo").version == "1"

    code, out = run("models", "promote", "trend-ppo", "2", "--stage", "shadow", *root)
    assert code == 0 and registry.get("trend-ppo", stage="shadow").version == "2"
    code, out = run("models", "list", *root)
    assert code == 0 and out.count("trend-ppo") == 2


def test_errors_name_what_to_do(tmp_path: Path) -> None:
    code, out = run("models", "list", "--registry", str(tmp_path / "missing"))
    assert code != 0 and "tradectl train" in out
    register_linear_policy(ModelRegistry(tmp_path), "m", WEIGHTS)
    code, out = run("models", "promote", "m", "7", "--registry", str(tmp_path))
    assert code != 0 and "no version '7'" in out
    code, out = run("models", "rollback", "m", "--registry", str(tmp_path))
    assert code != 0 and "no earlier version" in out
