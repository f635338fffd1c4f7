"""TRADING_ANALYTICS__* settings: a bad value stops the start with the variable named (trading_platform.settings)."""

from __future__ import annotations

import os

import pytest
from analytics_service.config import AnalyticsSettings
from trading_platform.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("TRADING_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TRADING_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def test_the_defaults_are_one_minute_and_one_day_windows() -> None:
    settings = load_settings(AnalyticsSettings)
    assert settings.service_name == "analytics"
    assert settings.analytics.windows_s == (60, 86400)
    assert settings.analytics.alertmanager_url == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRADING_ANALYTICS__WINDOWS_S", "[0, 60]"),
        ("TRADING_ANALYTICS__WINDOWS_S", "[60, 60]"),
        ("TRADING_ANALYTICS__ALERTMANAGER_URL", "alertmanager:9093"),
        ("TRADING_ANALYTICS__ALERTMANAGER_ATTEMPTS", "0"),
        ("TRADING_ANALYTICS__LAG_INTERVAL_S", "-1"),
        ("TRADING_ANALYTICS__WINDOW_SIZE", "60"),
    ],
)
def test_a_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings(AnalyticsSettings)
    assert any(problem.startswith(name) for problem in raised.value.problems), raised.value.problems


def test_windows_are_kept_in_ascending_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_ANALYTICS__WINDOWS_S", "[3600, 60]")
    assert load_settings(AnalyticsSettings).analytics.windows_s == (60, 3600)
