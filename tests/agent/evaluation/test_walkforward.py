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


def test_backtest_quick_twice_is_reproducible(tmp_path: Path) -> None:
    runner = CliRunner()
    for run in ("a", "b"):
        result = runner.invoke(cli(), ["backtest", "--quick", "--out", str(tmp_path / run), "--json"])
        assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "a" / "report.json").read_text())
    assert first == json.loads((tmp_path / "b" / "report.json").read_text())
    assert set(first["strategies"]) == {
        "ridge_features", "buy_and_hold", "equal_weight_monthly", "momentum_12_1", "ma_crossover_50_200",
        "signal_baseline_policy",
    }  # fmt: skip
    assert first["configurations_tried"] == len(EvaluationConfig.quick().grid)
    assert 0.0 <= first["deflated_sharpe"]["value"] <= 1.0
    assert first["agent"] == walkforward.agent_status()  # says whether the RL agent was evaluated, never silent
    days = {s["out_of_sample"]["days"] for s in first["strategies"].values()}
    assert len(days) == 1  # every strategy on the same days
    page = (tmp_path / "a" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "Configurations tried" in page
    assert 'src="http' not in page and "<link" not in page  # self-contained: nothing fetched


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
