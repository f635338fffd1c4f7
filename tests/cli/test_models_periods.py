"""tradectl models show says the days a version was trained and validated on and the replay it was bundled for."""

from __future__ import annotations

from signal_service import BUNDLED_REGISTRY
from tradectl.main import app
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
