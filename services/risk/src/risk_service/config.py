"""Risk settings: the platform's sections plus the limits and how the gate runs (TRADING_RISK__*)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from trading_platform.settings import Section, ServiceSettings

# The limits: changeable at run time by UpdateLimits (a looser change needs a second risk officer).
LIMIT_KEYS = (
    "max_order_quantity",
    "max_order_notional",
    "price_collar",
    "max_position_notional",
    "max_gross_exposure",
    "max_net_exposure",
    "max_orders_per_second",
    "max_orders_per_day",
    "max_daily_loss",
    "max_drawdown",
    "max_market_data_age_s",
)


class RiskConfig(Section):
    limits_version: str = "v1"
    max_order_quantity: Decimal = Field(Decimal(2000), gt=0)
    max_order_notional: Decimal = Field(Decimal(60000), gt=0)
    price_collar: Decimal = Field(Decimal("0.05"), gt=0, description="max distance from the last trade, a fraction")
    max_position_notional: Decimal = Field(Decimal(80000), gt=0)
    max_gross_exposure: Decimal = Field(Decimal(250000), gt=0)
    max_net_exposure: Decimal = Field(Decimal(200000), gt=0)
    max_orders_per_second: int = Field(50, gt=0)
    max_orders_per_day: int = Field(20000, gt=0)
    max_daily_loss: Decimal = Field(Decimal(10000), gt=0, description="against the broker's start-of-day equity")
    max_drawdown: Decimal = Field(Decimal("0.20"), gt=0, lt=1, description="from the day's peak equity")
    restricted_symbols: list[str] = Field(default_factory=list)
    max_market_data_age_s: float = Field(
        120.0, gt=0, description="older last price = deny (fail closed); an older bar is dead-lettered"
    )
    # How the gate runs (not limits: UpdateLimits does not change these).
    execution_address: str = Field("127.0.0.1:50055", description="execution's gRPC address (GetAccount)")
    account_timeout_s: float = Field(5.0, gt=0, description="deadline of a GetAccount call")
    account_retry_s: float = Field(5.0, gt=0, description="while the day's equity is unknown, ask again this often")
    trading_day_timezone: str = Field("America/New_York", description="a trading day starts at midnight here")
    four_eyes_window_s: float = Field(900.0, gt=0, description="a looser change expires unless approved in time")
    book_horizon_s: float = Field(
        7 * 86400.0, gt=0, description="a start rebuilds working orders and order ids from this far back"
    )


class RiskSettings(ServiceSettings):
    service_name: str = "risk"
    risk: RiskConfig = RiskConfig()
