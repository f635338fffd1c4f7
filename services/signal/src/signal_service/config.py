"""Signal settings (TRADING_SIGNAL__*)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from trading_platform.settings import Section, ServiceSettings


class SignalConfig(Section):
    strategy_id: str = "trend"
    max_weight: float = Field(0.2, gt=0, le=1, description="largest target weight per symbol (baseline and RL)")
    model_registry: Path | None = Field(None, description="model registry root; unset = the baseline policy")
    model_name: str = Field("trend-ppo", min_length=1, description="registered model to serve (production stage)")
    serving: Literal["ray", "local"] = Field("ray", description="run the policy on Ray actors, or in process")
    ray_address: str | None = Field(None, description="Ray cluster address; unset = start a local Ray")
    registry_poll_s: float = Field(1.0, gt=0, description="how often to look for a promoted or shadow version")
    monitor_window: int = Field(500, ge=10, description="bars in the prediction-monitoring window")
    monitor_every: int = Field(100, ge=1, description="publish a monitoring report every N predictions")
    max_in_flight: int = Field(
        1000,
        ge=1,
        description="bars fetched and not yet handled; each symbol's in order, one at a time, every symbol at once",
    )
    drift_threshold: float = Field(1.0, gt=0, description="feature mean shift (training stds) that raises an alert")


class SignalSettings(ServiceSettings):
    service_name: str = "signal"
    signal: SignalConfig = SignalConfig()
