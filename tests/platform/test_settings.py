"""Settings: frozen, strict, env-driven, and a bad config names its key."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from trading_platform.settings import ConfigError, ServiceSettings, load_settings


class ExampleSection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    max_order_quantity: int = Field(100, gt=0)
    api_secret: SecretStr = SecretStr("unset")


class ExampleSettings(ServiceSettings):
    example: ExampleSection = ExampleSection()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TRADING_"):
            monkeypatch.delenv(name)


def test_reads_nested_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_SERVICE_NAME", "risk")
    monkeypatch.setenv("TRADING_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("TRADING_EXAMPLE__MAX_ORDER_QUANTITY", "250")
    monkeypatch.setenv("TRADING_DEPLOYMENT__ROLE", "shadow")
    settings = load_settings(ExampleSettings)
    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert settings.example.max_order_quantity == 250
    assert settings.deployment.shadow is True
    with pytest.raises(Exception, match="frozen"):
        settings.service_name = "other"  # type: ignore[misc]


def test_missing_key_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_SERVICE_NAME", "risk")
    with pytest.raises(ConfigError) as error:
        load_settings(ExampleSettings)
    assert error.value.problems == ["TRADING_KAFKA__BOOTSTRAP_SERVERS is required"]


def test_invalid_value_is_named_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_SERVICE_NAME", "risk")
    monkeypatch.setenv("TRADING_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("TRADING_EXAMPLE__MAX_ORDER_QUANTITY", "-5")
    monkeypatch.setenv("TRADING_DEPLOYMENT__COLOUR", "purple")
    with pytest.raises(ConfigError) as error:
        load_settings(ExampleSettings)
    message = str(error.value)
    assert "TRADING_EXAMPLE__MAX_ORDER_QUANTITY" in message and "greater than 0" in message
    assert "TRADING_DEPLOYMENT__COLOUR" in message and "purple" in message
    assert error.value.code != 0


def test_unknown_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="TRADING_EXAMPLE__MAX_ORDER_QTY is not a known setting"):
        load_settings(
            ExampleSettings, service_name="risk", kafka={"bootstrap_servers": "x:1"}, example={"max_order_qty": 5}
        )


def test_secret_never_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(
        ExampleSettings,
        service_name="risk",
        kafka={"bootstrap_servers": "x:1"},
        example={"api_secret": "hunter2-very-secret"},
    )
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    assert settings.example.api_secret.get_secret_value() == "hunter2-very-secret"
