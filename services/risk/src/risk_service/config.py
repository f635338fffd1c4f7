"""Risk settings: the platform's sections plus the limits (TRADING_RISK__*)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from trading_platform.settings import Section, ServiceSettings


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
    max_daily_loss: Decimal = Field(Decimal(10000), gt=0)
    max_drawdown: Decimal = Field(Decimal("0.20"), gt=0, lt=1)
    restricted_symbols: list[str] = Field(default_factory=list)
    max_market_data_age_s: float = Field(120.0, gt=0, description="older last price = deny (fail closed)")
    initial_equity: Decimal = Field(Decimal(100000), gt=0)


class RiskSettings(ServiceSettings):
    service_name: str = "risk"
    risk: RiskConfig = RiskConfig()
