"""Signal settings (TRADING_SIGNAL__*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from trading_platform.settings import Section, ServiceSettings


class SignalConfig(Section):
    strategy_id: str = "trend"
    max_weight: float = Field(0.2, gt=0, le=1, description="baseline policy: largest weight per symbol")
    model_registry: Path | None = Field(None, description="RL model registry (issue 5); unset = baseline policy")


class SignalSettings(ServiceSettings):
    service_name: str = "signal"
    signal: SignalConfig = SignalConfig()
