"""Market-data settings: the broker connection (TRADING_BROKER__*) and validation (TRADING_MARKETDATA__*)."""

from __future__ import annotations

from pydantic import Field
from trading_platform.settings import BrokerSettings, Section, ServiceSettings


class MarketDataConfig(Section):
    symbols: list[str] = Field(default_factory=lambda: ["AAPL", "MSFT", "IBM", "GOOG"])
    stale_after_s: float = Field(10.0, gt=0, description="no bar for this long = the stream is stale: fail over")
    poll_interval_s: float = Field(1.0, gt=0, description="REST polling period of the backup source")
    quality_window_bars: int = Field(30, gt=0, description="bars per symbol per quality score")
    max_jump_sigmas: float = Field(12.0, gt=0, description="a return beyond this many EWMA sigmas is rejected")
    confirm_jump_bars: int = Field(
        3, ge=2, description="bars in a row holding a jumped-to level that make it a new level (the last accepted)"
    )
    history_bars: int = Field(2000, gt=0, description="bars kept per symbol for GetBars")
    linger_ms: int = Field(5, ge=0, description="how long the producer gathers records into a batch per partition")
    max_queued_frames: int = Field(16, gt=0, description="stream frames received and not yet handled")
    max_queued_records: int = Field(
        100_000, gt=0, description="records handed to the producer and not yet acknowledged before the stream waits"
    )


class MarketDataSettings(ServiceSettings):
    service_name: str = "market-data"
    broker: BrokerSettings
    marketdata: MarketDataConfig = MarketDataConfig()
