"""The topic registry: every topic's name, registered message type, partitions, retention and key.

Names follow `<domain>.<kind>.v<major>` (DESIGN.md section 3). Two derived families exist for every topic:
- `<topic>.dlq`: dead letters (trading.common.v1.DeadLetter) of anything a consumer of <topic> could not handle;
- `shadow.<topic>`: what the idle colour of a blue-green pair publishes instead of the live topic.
`lookup()` resolves all three forms, which is how `tradectl tail` decodes any topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message
from trading.audit.v1 import audit_pb2
from trading.common.v1 import common_pb2
from trading.deploy.v1 import deploy_pb2
from trading.execution.v1 import execution_pb2
from trading.marketdata.v1 import marketdata_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading.signal.v1 import signal_pb2

DAY_MS = 24 * 3600 * 1000
DLQ_SUFFIX = ".dlq"
SHADOW_PREFIX = "shadow."


@dataclass(frozen=True)
class Topic:
    name: str
    message_type: type[Message]
    partitions: int
    retention_ms: int
    # What the record key is, for the reader (the publisher passes it explicitly).
    key: str
    description: str

    @property
    def type_name(self) -> str:
        return self.message_type.DESCRIPTOR.full_name


def _t(
    name: str, message_type: type[Message], key: str, description: str, partitions: int = 3, retention_days: int = 7
) -> Topic:
    return Topic(
        name, message_type, partitions, retention_days * DAY_MS if retention_days >= 0 else -1, key, description
    )


# -1 retention = keep forever: the order flow is the system of record (OMS state is a fold of oms.events.v1).
TOPICS: dict[str, Topic] = {
    t.name: t
    for t in [
        _t("marketdata.quotes.v1", marketdata_pb2.Quote, "symbol", "normalised quotes"),
        _t("marketdata.trades.v1", marketdata_pb2.Trade, "symbol", "normalised trades"),
        _t("marketdata.bars.v1", marketdata_pb2.Bar, "symbol", "validated bars"),
        _t(
            "marketdata.quality.v1",
            marketdata_pb2.DataQualityScored,
            "symbol",
            "data-quality score per symbol and window",
        ),
        _t(
            "marketdata.sources.v1",
            marketdata_pb2.DataSourceSwitched,
            '"_source"',
            "failover between data sources",
            partitions=1,
        ),
        _t(
            "platform.deployments.v1",
            deploy_pb2.DeploymentChanged,
            "service",
            "blue-green promotions and rollbacks",
            partitions=1,
            retention_days=-1,
        ),
        _t("signal.signals.v1", signal_pb2.SignalGenerated, "symbol", "live policy target positions"),
        _t("signal.shadow.v1", signal_pb2.SignalGenerated, "symbol", "shadow policy target positions, for comparison"),
        _t(
            "signal.models.v1",
            signal_pb2.ModelChanged,
            "model name",
            "policy loads, hot swaps and shadow changes",
            partitions=1,
            retention_days=-1,
        ),
        _t(
            "signal.monitoring.v1",
            signal_pb2.PredictionMonitorReport,
            "model version",
            "prediction monitoring: feature drift, action distribution, realised vs expected reward",
            partitions=1,
        ),
        _t(
            "oms.commands.v1",
            oms_pb2.OrderCommand,
            "client_order_id",
            "risk-approved order commands to execution",
            retention_days=-1,
        ),
        _t(
            "oms.events.v1",
            oms_pb2.OrderEvent,
            "client_order_id",
            "order events of record (the OMS event log)",
            retention_days=-1,
        ),
        _t("oms.positions.v1", oms_pb2.PositionChanged, "symbol", "positions of record", retention_days=-1),
        _t(
            "oms.reconciliation.v1",
            oms_pb2.ReconciliationCompleted,
            '"_account"',
            "reconciliation outcomes",
            partitions=1,
        ),
        _t(
            "risk.decisions.v1", risk_pb2.RiskDecision, "client_order_id", "pre-trade risk decisions", retention_days=-1
        ),
        _t(
            "risk.state.v1",
            risk_pb2.TradingStateChanged,
            '"_trading_state"',
            "trading state changes (kill switch)",
            partitions=1,
            retention_days=-1,
        ),
        _t("risk.alerts.v1", risk_pb2.RiskAlertRaised, "alert kind", "risk alerts", partitions=1),
        _t(
            "risk.limits.v1",
            risk_pb2.LimitsChanged,
            '"_limits"',
            "audited limit changes",
            partitions=1,
            retention_days=-1,
        ),
        _t(
            "execution.reports.v1",
            execution_pb2.ExecutionReport,
            "client_order_id",
            "execution reports from broker trade updates",
            retention_days=-1,
        ),
        _t(
            "execution.quality.v1",
            execution_pb2.ExecutionQualityMeasured,
            "client_order_id",
            "execution quality per order",
        ),
        _t(
            "execution.status.v1",
            execution_pb2.BrokerConnectionChanged,
            '"_broker"',
            "broker connection state",
            partitions=1,
        ),
        _t(
            "audit.checkpoints.v1",
            audit_pb2.CheckpointSealed,
            "segment name",
            "sealed ledger segments",
            partitions=1,
            retention_days=-1,
        ),
        _t(
            "audit.verifications.v1",
            audit_pb2.VerificationCompleted,
            '"_ledger"',
            "ledger verification results",
            partitions=1,
        ),
    ]
}


class UnknownTopicError(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"topic {self.name!r} is not in the registry; `tradectl topics` lists the registered ones"


def lookup(name: str) -> Topic:
    """The registered topic for a name, including `<topic>.dlq` and `shadow.<topic>` forms."""
    if name in TOPICS:
        return TOPICS[name]
    if name.endswith(DLQ_SUFFIX):
        base = lookup(name[: -len(DLQ_SUFFIX)])
        return Topic(
            name, common_pb2.DeadLetter, base.partitions, 14 * DAY_MS, base.key, f"dead letters of {base.name}"
        )
    if name.startswith(SHADOW_PREFIX):
        base = lookup(name[len(SHADOW_PREFIX) :])
        return Topic(
            name, base.message_type, base.partitions, base.retention_ms, base.key, f"shadow-colour copy of {base.name}"
        )
    raise UnknownTopicError(name)


def dead_letter_topic(name: str) -> str:
    return lookup(name).name + DLQ_SUFFIX


def shadow_topic(name: str) -> str:
    return SHADOW_PREFIX + lookup(name).name
