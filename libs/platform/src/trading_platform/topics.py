"""The topic registry: every topic's name, registered message type, partitions, retention and key.

Names follow `<domain>.<kind>.v<major>` (docs/architecture.md section 3). Two derived families exist for every topic:
- `<topic>.dlq`: dead letters (trading.common.v1.DeadLetter) of anything a consumer of <topic> could not handle;
- `shadow.<topic>`: what the idle colour of a blue-green pair publishes instead of the live topic.
`lookup()` resolves all three forms, which is how `tradectl tail` decodes any topic.

Each topic also names who may touch it: its one writer (the service that owns it) and its readers (the services that
consume it). The Kafka ACLs of every cluster are generated from this (trading_platform.acls): a service writes only
the topics it owns and reads only what it consumes. A topic's dead letters are written by its readers (a consumer
dead-letters what it cannot handle), its shadow copy by its writer's idle colour. The audit service and the operator
tool (`tradectl`) read every topic. `compacted` marks a state topic whose latest record per key is what matters: the
cluster keeps at least that record per key (cleanup.policy compact,delete keeps the retention too).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from google.protobuf.message import Message
from trading.analytics.v1 import analytics_pb2
from trading.audit.v1 import audit_pb2
from trading.common.v1 import common_pb2
from trading.deploy.v1 import deploy_pb2
from trading.execution.v1 import execution_pb2
from trading.identity.v1 import identity_pb2
from trading.marketdata.v1 import marketdata_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading.security.v1 import security_pb2
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
    writer: str = ""  # the principal that owns (writes) the topic
    readers: tuple[str, ...] = ()  # the principals that consume it (audit and tradectl read every topic)
    compacted: bool = False
    # Principals that also write it (only security.refusals.v1: every service that serves gRPC reports its refusals).
    co_writers: tuple[str, ...] = ()

    @property
    def cleanup_policy(self) -> str:
        return "compact,delete" if self.compacted else "delete"

    def config(self, min_insync_replicas: int) -> dict[str, str]:
        """The topic-level configuration a cluster creates it with."""
        return {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": str(min_insync_replicas),
        }

    @property
    def type_name(self) -> str:
        return self.message_type.DESCRIPTOR.full_name


# Principals: one per service, plus the operator's command line (deploy records, tailing).
MARKET_DATA, SIGNAL, OMS, RISK, EXECUTION, AUDIT = (
    "market-data",
    "signal",
    "order-management",
    "risk",
    "execution",
    "audit",
)
OPERATOR = "tradectl"
GATEWAY = "gateway"
ANALYTICS = "analytics"
READ_EVERYTHING = (AUDIT, OPERATOR)


def _t(
    name: str,
    message_type: type[Message],
    key: str,
    description: str,
    partitions: int = 3,
    retention_days: int = 7,
    *,
    writer: str,
    readers: tuple[str, ...] = (),
    compacted: bool = False,
    co_writers: tuple[str, ...] = (),
) -> Topic:
    return Topic(
        name,
        message_type,
        partitions,
        retention_days * DAY_MS if retention_days >= 0 else -1,
        key,
        description,
        writer,
        readers,
        compacted,
        co_writers,
    )


# -1 retention = keep forever: the order flow is the system of record (OMS state is a fold of oms.events.v1).
TOPICS: dict[str, Topic] = {
    t.name: t
    for t in [
        _t("marketdata.quotes.v1", marketdata_pb2.Quote, "symbol", "normalised quotes", writer=MARKET_DATA),
        _t("marketdata.trades.v1", marketdata_pb2.Trade, "symbol", "normalised trades", writer=MARKET_DATA),
        _t(
            "marketdata.bars.v1",
            marketdata_pb2.Bar,
            "symbol",
            "validated bars",
            writer=MARKET_DATA,
            readers=(SIGNAL, RISK),
        ),
        _t(
            "marketdata.quality.v1",
            marketdata_pb2.DataQualityScored,
            "symbol",
            "data-quality score per symbol and window",
            writer=MARKET_DATA,
        ),
        _t(
            "marketdata.sources.v1",
            marketdata_pb2.DataSourceSwitched,
            '"_source"',
            "failover between data sources",
            partitions=1,
            writer=MARKET_DATA,
        ),
        _t(
            "platform.deployments.v1",
            deploy_pb2.DeploymentChanged,
            "service",
            "blue-green promotions and rollbacks",
            partitions=1,
            retention_days=-1,
            writer=OPERATOR,
        ),
        _t(
            "signal.signals.v1",
            signal_pb2.SignalGenerated,
            "symbol",
            "live policy target positions",
            writer=SIGNAL,
            readers=(OMS,),
        ),
        _t(
            "signal.shadow.v1",
            signal_pb2.SignalGenerated,
            "symbol",
            "shadow policy target positions, for comparison",
            writer=SIGNAL,
        ),
        _t(
            "signal.models.v1",
            signal_pb2.ModelChanged,
            "model name",
            "policy loads, hot swaps and shadow changes",
            partitions=1,
            retention_days=-1,
            writer=SIGNAL,
            compacted=True,
        ),
        _t(
            "signal.monitoring.v1",
            signal_pb2.PredictionMonitorReport,
            "model version",
            "prediction monitoring: feature drift, action distribution, realised vs expected reward",
            partitions=1,
            writer=SIGNAL,
        ),
        _t(
            "oms.commands.v1",
            oms_pb2.OrderCommand,
            "client_order_id",
            "risk-approved order commands to execution",
            retention_days=-1,
            writer=OMS,
            readers=(EXECUTION,),
        ),
        _t(
            "oms.events.v1",
            oms_pb2.OrderEvent,
            "client_order_id",
            "order events of record (the OMS event log)",
            retention_days=-1,
            writer=OMS,
            readers=(RISK,),  # risk counts working orders until their terminal event
        ),
        _t(
            "oms.snapshots.v1",
            oms_pb2.OrderBookSnapshot,
            '"_book"',
            "snapshots of the book of record: a start replays only the events after the latest",
            partitions=1,
            retention_days=-1,
            writer=OMS,
            compacted=True,
        ),
        _t(
            "oms.positions.v1",
            oms_pb2.PositionChanged,
            "symbol",
            "positions of record",
            retention_days=-1,
            writer=OMS,
            readers=(RISK,),
            compacted=True,
        ),
        _t(
            "oms.reconciliation.v1",
            oms_pb2.ReconciliationCompleted,
            '"_account"',
            "reconciliation outcomes",
            partitions=1,
            writer=OMS,
        ),
        _t(
            "risk.decisions.v1",
            risk_pb2.RiskDecision,
            "client_order_id",
            "pre-trade risk decisions",
            retention_days=-1,
            writer=RISK,
            readers=(EXECUTION,),
        ),
        _t(
            "risk.state.v1",
            risk_pb2.TradingStateChanged,
            '"_trading_state"',
            "trading state changes (kill switch)",
            partitions=1,
            retention_days=-1,
            writer=RISK,
            readers=(EXECUTION,),
            compacted=True,
        ),
        _t("risk.alerts.v1", risk_pb2.RiskAlertRaised, "alert kind", "risk alerts", partitions=1, writer=RISK),
        _t(
            "risk.limits.v1",
            risk_pb2.LimitsChanged,
            '"_limits"',
            "audited limit changes",
            partitions=1,
            retention_days=-1,
            writer=RISK,
            compacted=True,
        ),
        _t(
            "risk.changes.v1",
            risk_pb2.RiskChangeRecorded,
            "change id",
            "four eyes: looser risk changes requested, approved, refused and expired",
            partitions=1,
            retention_days=-1,
            writer=RISK,
        ),
        _t(
            "risk.equity.v1",
            risk_pb2.StartOfDayEquityRecorded,
            '"_equity"',
            "the start-of-day equity of the trading day, from the broker account",
            partitions=1,
            retention_days=-1,
            writer=RISK,
            compacted=True,
        ),
        _t(
            "execution.reports.v1",
            execution_pb2.ExecutionReport,
            "client_order_id",
            "execution reports from broker trade updates",
            retention_days=-1,
            writer=EXECUTION,
            readers=(OMS,),
        ),
        _t(
            "execution.quality.v1",
            execution_pb2.ExecutionQualityMeasured,
            "client_order_id",
            "execution quality per order",
            writer=EXECUTION,
        ),
        _t(
            "execution.status.v1",
            execution_pb2.BrokerConnectionChanged,
            '"_broker"',
            "broker connection state",
            partitions=1,
            writer=EXECUTION,
            compacted=True,
        ),
        _t(
            "audit.checkpoints.v1",
            audit_pb2.CheckpointSealed,
            "segment name",
            "sealed ledger segments",
            partitions=1,
            retention_days=-1,
            writer=AUDIT,
        ),
        _t(
            "audit.verifications.v1",
            audit_pb2.VerificationCompleted,
            '"_ledger"',
            "ledger verification results",
            partitions=1,
            writer=AUDIT,
        ),
        _t(
            "identity.events.v1",
            identity_pb2.IdentityEvent,
            "username",
            "logins, lockouts, sessions, users, roles and API keys, each with its actor",
            partitions=1,
            retention_days=-1,
            writer=GATEWAY,
        ),
        _t(
            "security.refusals.v1",
            security_pb2.AccessRefused,
            "refusing service",
            "gRPC calls refused before their handler: who, which method, why",
            partitions=1,
            retention_days=-1,
            writer=AUDIT,
            co_writers=(MARKET_DATA, SIGNAL, OMS, RISK, EXECUTION, GATEWAY),
        ),
        _t(
            "analytics.execution.v1",
            analytics_pb2.ExecutionQualityWindow,
            '"<symbol>|<window_start>|<window_end>"',
            "transaction-cost analysis per symbol and window (TCA, fill, reject and cancel rates, latencies)",
            writer=ANALYTICS,
            compacted=True,
        ),
        _t(
            "analytics.pnl.v1",
            analytics_pb2.PnlDay,
            '"<day>|<symbol>"',
            "realized and unrealized P&L by day and symbol",
            retention_days=-1,
            writer=ANALYTICS,
            compacted=True,
        ),
        _t(
            "analytics.quality.v1",
            analytics_pb2.DataQualityWindow,
            '"<symbol>|<window_start>|<window_end>"',
            "data quality per symbol and window: score, gaps, failovers",
            writer=ANALYTICS,
            compacted=True,
        ),
        _t(
            "analytics.deadletters.v1",
            analytics_pb2.DeadLetterWindow,
            '"<topic>|<window_start>|<window_end>"',
            "dead letters per topic and window",
            writer=ANALYTICS,
            compacted=True,
        ),
        _t(
            "analytics.alerts.v1",
            analytics_pb2.Alert,
            '"<rule>|<subject>"',
            "alert rules' state per subject: firing or resolved",
            partitions=1,
            retention_days=30,
            writer=ANALYTICS,
            compacted=True,
        ),
    ]
}

# What analytics folds into its tables, and what the front door (REST reads, the live dashboard) serves: every topic
# but the ones it writes. Both are added to the topics' readers, so the ACLs let them read exactly these.
ANALYTICS_READS = (
    "marketdata.bars.v1",
    "marketdata.quality.v1",
    "marketdata.sources.v1",
    "signal.signals.v1",
    "signal.monitoring.v1",
    "oms.events.v1",
    "oms.positions.v1",
    "oms.reconciliation.v1",
    "risk.decisions.v1",
    "risk.limits.v1",
    "risk.equity.v1",
    "execution.reports.v1",
    "execution.quality.v1",
)
GATEWAY_READS = tuple(name for name, t in TOPICS.items() if t.writer != GATEWAY)
for _name in ANALYTICS_READS:
    TOPICS[_name] = replace(TOPICS[_name], readers=(*TOPICS[_name].readers, ANALYTICS))
for _name in GATEWAY_READS:
    TOPICS[_name] = replace(TOPICS[_name], readers=(*TOPICS[_name].readers, GATEWAY))


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
        # A consumer dead-letters what it cannot handle: the readers of the base topic write its dead letters.
        return Topic(
            name,
            common_pb2.DeadLetter,
            base.partitions,
            14 * DAY_MS,
            base.key,
            f"dead letters of {base.name}",
            writer="",
            readers=(),
        )
    if name.startswith(SHADOW_PREFIX):
        base = lookup(name[len(SHADOW_PREFIX) :])
        return Topic(
            name,
            base.message_type,
            base.partitions,
            base.retention_ms,
            base.key,
            f"shadow-colour copy of {base.name}",
            writer=base.writer,
            readers=(),
            compacted=base.compacted,
        )
    raise UnknownTopicError(name)


def dead_letter_topic(name: str) -> str:
    return lookup(name).name + DLQ_SUFFIX


def shadow_topic(name: str) -> str:
    return SHADOW_PREFIX + lookup(name).name


def dead_letter_writers(name: str) -> tuple[str, ...]:
    """Who may write `<name>.dlq`: every consumer of the base topic (audit reads everything, so it may too), and its
    writer, which dead-letters what it could not publish (market-data: invalid source data)."""
    base = lookup(name)
    return tuple(dict.fromkeys((base.writer, *base.readers, AUDIT)))


def principals() -> list[str]:
    """Every Kafka principal the registry names (one per service, and the operator tool)."""
    names = {t.writer for t in TOPICS.values()} | {r for t in TOPICS.values() for r in t.readers}
    return sorted(names | set(READ_EVERYTHING))


MAX_REPLICAS = 3


def replication(brokers: int) -> tuple[int, int]:
    """The replication factor and min.insync.replicas a cluster of this many brokers supports: 3 and 2 from three
    brokers on (an acknowledged write survives a broker down), one replica on a single node (the dev stack)."""
    replicas = min(MAX_REPLICAS, max(1, brokers))
    return replicas, max(1, replicas - 1)
