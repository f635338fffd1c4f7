"""Execution settings: the broker connection (TRADING_BROKER__*) and submission limits (TRADING_EXECUTION__*)."""

from __future__ import annotations

from pydantic import Field, model_validator
from trading_platform.settings import BrokerSettings, Section, ServiceSettings


class ExecutionConfig(Section):
    requests_per_minute: int = Field(
        200,
        gt=1,
        description="the broker's rate limit (requests an account over a sliding minute): every REST call of this "
        "instance (submits, look-ups, cancels, catch-up, account reads) is paced to stay within it",
    )
    reserved_requests_per_minute: int = Field(
        20,
        ge=0,
        description="the part of the budget submits never take: the look-ups, cancels and reads that resolve and "
        "report orders get through a storm of submits; below requests_per_minute",
    )
    approval_wait_s: float = Field(2.0, gt=0, description="how long a command waits to see its risk approval")
    approval_horizon_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="at start, approvals are read from this long ago: a command older than that finds none and is "
        "refused (fail closed), and the start reads a window of risk.decisions.v1, not its history",
    )
    reports_horizon_s: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description="at start, execution.reports.v1 is folded from this long ago (what the broker already reported "
        "about orders still alive): a bounded start",
    )
    max_command_age_s: float = Field(
        30.0,
        gt=0,
        description="a submit command older than this (its envelope's ts_init) is refused (REJECTED, "
        "REFUSAL_CODE_COMMAND_TOO_OLD) and dead-lettered, never traded: after an outage the backlog is not sent",
    )
    stream_wait_s: float = Field(5.0, gt=0, description="how long a submit waits for the trade-update stream")
    submit_timeout_s: float = Field(5.0, gt=0)
    resolve_timeout_s: float = Field(
        30.0,
        gt=0,
        description="after an ambiguous submit the order is looked up by client order id (never sent again) this "
        "long; not found by then, it is reported REJECTED with REFUSAL_CODE_UNRESOLVED",
    )
    listen_confirm_s: float = Field(
        3.0, gt=0, description="a trade-update stream not confirmed 'listening' this long after connecting is half-open"
    )

    @model_validator(mode="after")
    def _reserve_fits(self) -> ExecutionConfig:
        if self.reserved_requests_per_minute >= self.requests_per_minute:
            raise ValueError(
                f"EXECUTION__RESERVED_REQUESTS_PER_MINUTE={self.reserved_requests_per_minute} must be below "
                f"EXECUTION__REQUESTS_PER_MINUTE={self.requests_per_minute} (submits need a part of the budget)"
            )
        return self


class ExecutionSettings(ServiceSettings):
    service_name: str = "execution"
    broker: BrokerSettings
    execution: ExecutionConfig = ExecutionConfig()
