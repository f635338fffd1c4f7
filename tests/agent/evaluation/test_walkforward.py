"""Walk-forward on the real skfolio closes (quick mode) and `tradectl backtest`: windows never overlap, the candidate
only trains on its train window, the report is complete and reproducible from the seed."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from tradectl import backtest
from trading_agent.evaluation import walkforward
from trading_agent.evaluation.walkforward import EvaluationConfig, fit_ridge, make_windows
from trading_datasets import close_panel
from typer.testing import CliRunner


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """tradectl (test copy holding only the backtest command)."""

    backtest.register(app)
    return app


def test_windows_are_ordered_and_disjoint() -> None:
    config = EvaluationConfig()
    dates, _ = close_panel(list(config.symbols[:2]), start=config.start, end=config.end)
    windows = make_windows(dates, config)
    assert len(windows) == 2022 - 1990 - 7 + 2  # tests 1996 .. 2022
    for w in windows:
        assert w.train[1] == w.validate[0] and w.validate[1] == w.test[0] and w.test[0] < w.test[1]
    for a, b in itertools.pairwise(windows):
        assert a.test[1] == b.test[0]  # the test windows tile the period once
    assert str(dates[windows[0].test[0]]).startswith("1996")


def test_the_candidate_learns_from_its_train_window_only() -> None:
    _, closes = close_panel(["AAPL", "KO"], start="2010-01-01", end="2013-12-31")
    train = closes[:500]
    changed = closes.copy()
    changed[500:] *= 3.0
    assert np.array_equal(fit_ridge(train, 10.0).coefficients, fit_ridge(changed[:500], 10.0).coefficients)
    assert not np.array_equal(fit_ridge(train, 10.0).coefficients, fit_ridge(closes[:700], 10.0).coefficients)


def test_unknown_config_key_is_named() -> None:
    with pytest.raises(ValueError, match="trian_years"):
        EvaluationConfig.from_mapping({"trian_years": 3})
    with pytest.raises(ValueError, match="test_years"):
        EvaluationConfig.from_mapping({"test_years": 0})
    with pytest.raises(ValueError, match="slippage_bps"):
        EvaluationConfig.from_mapping({"slippage_bps": -1})


BASELINES = {"buy_and_hold", "equal_weight_monthly", "momentum_12_1", "ma_crossover_50_200", "signal_baseline_policy",
             "minimum_variance", "risk_parity"}  # fmt: skip
CI_KEYS = {"difference", "lower", "upper", "confidence", "resamples", "mean_block"}


@pytest.mark.slow
def test_backtest_quick_twice_is_reproducible(ray_session, tmp_path: Path) -> None:
    """Quick mode end to end with the RL agent trained in each window (one Ray session): every figure, the agent's
    included, is the same on a second run from the same seed; only the wall-clock timings differ."""
    result = CliRunner().invoke(cli(), ["backtest", "--quick", "--out", str(tmp_path / "a"), "--json"])
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "a" / "report.json").read_text())
    # the second run skips the plots (seconds): report.json is what must reproduce
    again = walkforward.report_figures(walkforward.run_walk_forward(EvaluationConfig.quick()))
    second = json.loads(json.dumps(again, sort_keys=True))
    headline = json.loads(result.stdout)
    assert headline["sharpe"]["rl_agent"] == first["strategies"]["rl_agent"]["out_of_sample"]["sharpe"]
    assert headline["deflated_sharpe_by_candidate"] == first["deflated_sharpe"]["by_candidate"]
    assert set(first.pop("timings_s")) == {"total_s", "agent_training_s"}
    second.pop("timings_s")
    assert first == second
    assert set(first["strategies"]) == {"ridge_features", "rl_agent", *BASELINES}
    assert first["candidates"] == ["ridge_features", "rl_agent"]
    quick = EvaluationConfig.quick()
    assert first["configurations_tried"] == len(quick.grid) + 1  # the agent is one more configuration tried
    assert 0.0 <= first["deflated_sharpe"]["value"] <= 1.0
    assert set(first["deflated_sharpe"]["by_candidate"]) == {"ridge_features", "rl_agent"}
    assert 0.0 <= first["deflated_sharpe"]["by_candidate"]["rl_agent"] <= 1.0
    assert first["agent"] == walkforward.agent_status(quick)  # says whether the RL agent was evaluated, never silent
    assert first["agent"].startswith("evaluated as rl_agent") and "train window" in first["agent"]
    days = {s["out_of_sample"]["days"] for s in first["strategies"].values()}
    assert len(days) == 1  # every strategy on the same days

    # the agent gets every figure the others get: metrics, per-window metrics, CIs against every other strategy
    agent = first["strategies"]["rl_agent"]
    assert set(agent["out_of_sample"]) == set(first["strategies"]["buy_and_hold"]["out_of_sample"])
    assert len(agent["windows"]) == 2
    assert set(first["sharpe_difference_vs_rl_agent"]) == {"ridge_features", *BASELINES}
    assert all(set(ci) == CI_KEYS for ci in first["sharpe_difference_vs_rl_agent"].values())
    assert set(first["sharpe_difference_vs_candidate"]) == {"rl_agent", *BASELINES}
    for ci in first["sharpe_difference_vs_rl_agent"].values():
        assert ci["lower"] <= ci["upper"]
    assert [a["seed"] for a in first["agent_windows"]] == [quick.seed, quick.seed + 1]
    assert first["seeds"]["rl_agent"] == [quick.seed, quick.seed + 1]
    budget = first["agent_budget"]
    assert budget["iterations"] == 1 and budget["env_steps_per_window"] == 500 and budget["algorithm"] == "PPO"
    for window in first["agent_windows"]:
        assert window["iterations"] == 1 and window["timesteps"] >= 500
        assert {"sharpe", "steps", "per_symbol"} <= set(window["validate_env"])
        assert window["validate_backtest"]["days"] == 252

    page = (tmp_path / "a" / "report.html").read_text()
    # equity, drawdowns, rolling Sharpe of every strategy; weights of each candidate (ridge_features, rl_agent)
    assert page.count('class="plotly-graph-div"') == 7 and "Configurations tried" in page
    assert "<h3>rl_agent</h3><div style=" in page and "rl_agent per window" in page
    assert "Sharpe(rl_agent) - Sharpe(vs)" in page
    assert 'src="http' not in page and "<link" not in page  # self-contained: nothing fetched


def test_no_agent_leaves_it_out_and_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["backtest", "--quick", "--no-agent", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "report.json").read_text())
    assert "rl_agent" not in figures["strategies"] and figures["candidates"] == ["ridge_features"]
    assert figures["configurations_tried"] == len(EvaluationConfig.quick().grid)
    assert figures["agent"].startswith("not evaluated") and "--no-agent" in figures["agent"]
    assert "agent_windows" not in figures and "sharpe_difference_vs_rl_agent" not in figures
    page = (tmp_path / "report.html").read_text()
    assert '<img src="data:image/png' not in page and page.count('class="plotly-graph-div"') == 6
    # plotly.js is embedded once, from the pinned package: no script is fetched from anywhere
    assert page.count("<script") > 6 and "<script src=" not in page.replace('<script src="data:', "")
    assert {"minimum_variance", "risk_parity"} <= set(figures["strategies"])


def test_backtest_help_names_the_agent_options() -> None:
    result = CliRunner().invoke(cli(), ["backtest", "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0 and "--no-agent" in result.output and "--quick" in result.output


def test_bad_config_file_stops_with_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("symbols: [AAPL]\nmax_windowz: 2\n")
    result = CliRunner().invoke(cli(), ["backtest", "--config", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "max_windowz" in result.output


def test_unknown_symbol_stops_with_its_name(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("symbols: [AAPL, NOTASYMBOL]\n")
    result = CliRunner().invoke(cli(), ["backtest", "--config", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "NOTASYMBOL" in result.output and not (tmp_path / "out").exists()
