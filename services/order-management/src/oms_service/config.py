"""Order-management settings (TRADING_OMS__*)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from trading_platform.settings import Section, ServiceSettings


class OmsConfig(Section):
    risk_address: str = "127.0.0.1:50054"
    execution_address: str = "127.0.0.1:50055"
    risk_timeout_s: float = Field(0.5, gt=0, description="no answer from risk in time = not approved")
    lot_size: Decimal = Field(Decimal(1), gt=0)
    min_order_quantity: Decimal = Field(Decimal(1), gt=0)
    min_order_notional: Decimal = Field(Decimal(500), ge=0, description="smaller adjustments are not worth an order")
    max_signal_age_s: float = Field(
        30.0,
        gt=0,
        description="a signal older than this (its envelope's ts_init) is refused and dead-lettered, never traded: "
        "after an outage the backlog is not turned into orders",
    )
    reconcile_interval_s: float = Field(30.0, gt=0)
    reconcile_tolerance: Decimal = Field(Decimal("0.000001"), ge=0)
    reconcile_grace_s: float = Field(
        60.0,
        ge=0,
        description="an order open on one side only (at order-management or at the broker) is a mismatch once it "
        "has lasted this long: a command or a report in flight explains it until then (execution may look an "
        "ambiguous submit up for EXECUTION__RESOLVE_TIMEOUT_S)",
    )
    snapshot_every_events: int = Field(
        1000, ge=1, description="a snapshot of the book once this many events were applied since the last one"
    )
    snapshot_check_s: float = Field(5.0, gt=0, description="how often the snapshot writer looks")
    max_queued_orders: int = Field(
        64,
        gt=0,
        description="manual orders (SubmitOrder) waiting for their transaction or being written; one more is answered "
        "BUSY at once (nothing written) rather than queued past its caller's deadline",
    )
    max_orders_per_transaction: int = Field(
        32,
        gt=0,
        description="manual orders written together in one Kafka transaction (side by side, each symbol's in turn): "
        "one commit for many orders",
    )


class OmsSettings(ServiceSettings):
    service_name: str = "order-management"
    oms: OmsConfig = OmsConfig()
