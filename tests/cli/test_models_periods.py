"""tradectl models show and the tradectl up banner say the days a version was trained and validated on and the
replay (the one it was bundled for, the one the exchange runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

from paper_exchange.testing import start_exchange
from signal_service import BUNDLED_REGISTRY
from tradectl.main import app
from tradectl.stack import periods_banner
from trading_policy import ModelRegistry
from typer.testing import CliRunner


def show(*args: str) -> str:
    result = CliRunner().invoke(app, ["models", "show", "trend-ppo", *args, "--registry", str(BUNDLED_REGISTRY)])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # the console wraps long lines


def test_show_names_the_training_validation_and_replay_periods() -> None:
    out = show()  # the production version
    assert "data periods: trained 1990-01-02..2007-12-31, validated 2008-01-02..2009-12-31" in out
    assert "seen up to 2009-12-31; replay bokeh 2010-01-04..2013-03-01 (out of sample)" in out
    old = show("1")
    assert "trained 2000-01-03..2015-12-31, validated 2016-01-04..2017-12-29; seen up to 2017-12-29" in old


def test_the_up_banner_names_the_replay_and_the_served_policys_periods(tmp_path: Path) -> None:
    shutil.copytree(BUNDLED_REGISTRY / "trend-ppo", tmp_path / "trend-ppo")
    exchange = start_exchange()
    try:
        line = periods_banner(exchange.url, tmp_path)
        assert line.startswith("replay: bokeh 2010-01-04..2013-03-01; ")
        assert (
            "policy trend-ppo@2 trained 1990-01-02..2007-12-31, validated 2008-01-02..2009-12-31 (out of sample)"
            in line
        )
        ModelRegistry(tmp_path).promote("trend-ppo", "1")
        assert "policy trend-ppo@1 trained 2000-01-03..2015-12-31" in periods_banner(exchange.url, tmp_path)
        assert periods_banner(exchange.url, tmp_path).endswith("(IN SAMPLE)")
    finally:
        exchange.stop()
