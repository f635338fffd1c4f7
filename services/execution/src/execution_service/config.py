"""Execution settings: the broker connection (TRADING_BROKER__*) and submission limits (TRADING_EXECUTION__*)."""

from __future__ import annotations

from pydantic import Field
from trading_platform.settings import BrokerSettings, Section, ServiceSettings


class ExecutionConfig(Section):
    requests_per_minute: int = Field(200, gt=0, description="the broker's rate limit")
    approval_wait_s: float = Field(2.0, gt=0, description="how long a command waits to see its risk approval")
    stream_wait_s: float = Field(5.0, gt=0, description="how long a submit waits for the trade-update stream")
    submit_timeout_s: float = Field(5.0, gt=0)
    listen_confirm_s: float = Field(
        3.0, gt=0, description="a trade-update stream not confirmed 'listening' this long after connecting is half-open"
    )


class ExecutionSettings(ServiceSettings):
    service_name: str = "execution"
    broker: BrokerSettings
    execution: ExecutionConfig = ExecutionConfig()
