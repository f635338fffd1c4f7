"""Analytics settings: the platform's sections plus how the stream apps window, alert and deliver
(TRADING_ANALYTICS__*). A bad value stops the start naming its variable (trading_platform.settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from trading_platform.settings import Section, ServiceSettings

# The consumer groups whose lag the consumer_lag rule watches (the platform's own groups; audit reads everything).
PLATFORM_GROUPS = ("order-management", "execution", "signal", "audit")


class AnalyticsConfig(Section):
    windows_s: tuple[int, ...] = Field(
        (60, 86400), min_length=1, description="tumbling window sizes in seconds (JSON list); default 1 min and 1 day"
    )
    window_keep_s: int = Field(
        2 * 86400, gt=0, description="a window row is dropped from the tables this long after the window ended"
    )
    rules_file: Path | None = Field(None, description="alert rules (YAML); default: the packaged alert_rules.yaml")
    alertmanager_url: str = Field(
        "", pattern=r"^(https?://.+)?$", description="Alertmanager base URL (POST <url>/api/v2/alerts); empty = off"
    )
    alertmanager_timeout_s: float = Field(5.0, gt=0, description="deadline of one webhook POST")
    alertmanager_attempts: int = Field(5, ge=1, le=50, description="tries per alert before it is counted as lost")
    alertmanager_backoff_s: float = Field(0.5, gt=0, description="first retry delay; doubles, capped at 30 s")
    alertmanager_queue: int = Field(1000, ge=1, description="alerts waiting for delivery; beyond it the oldest go")
    generator_url: str = Field("", description="generatorURL of each alert (the dashboard's alerts page)")
    tick_s: float = Field(5.0, gt=0, description="how often windows are closed and old rows dropped")
    lag_interval_s: float = Field(15.0, gt=0, description="how often the consumer_lag rule reads committed offsets")
    lag_groups: tuple[str, ...] = Field(PLATFORM_GROUPS, description="consumer groups whose lag is watched")
    changelog_replicas: int = Field(1, ge=1, le=5, description="replication factor of faust's changelog topics")
    data_dir: Path = Field(Path(".run/analytics"), description="faust's data folder (table state)")
    timezone: str = Field("America/New_York", description="the P&L day is the exchange day in this zone")

    @field_validator("windows_s")
    @classmethod
    def _positive_windows(cls, sizes: tuple[int, ...]) -> tuple[int, ...]:
        if any(size <= 0 for size in sizes) or len(set(sizes)) != len(sizes):
            raise ValueError("window sizes must be distinct positive seconds")
        return tuple(sorted(sizes))


class AnalyticsSettings(ServiceSettings):
    service_name: str = "analytics"
    analytics: AnalyticsConfig = AnalyticsConfig()
