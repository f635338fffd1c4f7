"""The faust-streaming app: one agent per input topic, the windowed tables, and the timers.

Each record is decoded with the topic registry (trading_platform.topics.lookup). One that cannot be decoded, or whose
handling fails, goes to its topic's `.dlq` as a DeadLetter naming the reason, and the app goes on with the next.
Every table change publishes the row's latest value to its analytics.* topic (protobuf in the platform's envelope,
through trading_platform's Publisher); every alert transition goes to analytics.alerts.v1 and to the webhook.

Tables are faust tables (changelog-backed, `<app id>-<table>-changelog`, recovered at start) keyed by the row's topic
key; windows are tumbling (analytics_service.windows). The app runs as one worker: it folds topics keyed by symbol,
order id and model into the same tables, so the tables are not co-partitioned with every input.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import faust
from google.protobuf.message import Message
from prometheus_client import Counter
from trading.common.v1 import common_pb2
from trading_platform.envelope import new_envelope
from trading_platform.messaging.names import TopicNames
from trading_platform.messaging.records import BadRecord, decode
from trading_platform.observability import get_logger
from trading_platform.topics import ANALYTICS_READS, DLQ_SUFFIX, SHADOW_PREFIX, TOPICS, lookup

from analytics_service import deadletters, quality, tca
from analytics_service.alerts import AlertEngine, alert_key
from analytics_service.config import AnalyticsConfig
from analytics_service.deadletters import DeadLetters
from analytics_service.lag import LagReader
from analytics_service.limits import LimitUse, drift, reconciliation
from analytics_service.pnl import Pnl
from analytics_service.quality import Quality
from analytics_service.rules import Observation, RuleSet
from analytics_service.tca import Tca
from analytics_service.webhook import AlertmanagerWebhook
from analytics_service.windows import Windows, evict

RECORDS = Counter("analytics_records_total", "input records handled", ["topic", "outcome"])
ROWS = Counter("analytics_rows_published_total", "table rows published", ["topic"])
log = get_logger("analytics")
PRODUCER = "analytics"
# Every registry topic's dead letters (the analytics principal reads each `.dlq`).
DLQ_TOPICS = tuple(name + DLQ_SUFFIX for name in TOPICS)
DEAD_LETTERS = "dead-letters"  # the agent over every `.dlq`
DEAD_LETTER_TOPIC = lookup(DLQ_TOPICS[0])  # any `.dlq`: each carries trading.common.v1.DeadLetter
TABLES = ("tca", "orders", "signals", "pnl", "books", "fills", "quality", "last_bars", "deadletters", "dlq_totals",
          "limits", "alerts")  # fmt: skip


class Sink(Protocol):
    """Where rows, alerts and dead letters go: trading_platform.messaging.Publisher."""

    async def publish(self, topic: str, message: Message, key: str) -> Any: ...

    async def publish_dead_letter(self, dead_letter: common_pb2.DeadLetter, source_topic: str) -> None: ...


@dataclass(frozen=True)
class Broker:
    """How the faust app reaches Kafka."""

    url: str  # kafka://host:port[;kafka://host:port]
    credentials: Any = None  # faust.SASLCredentials for SASL/SCRAM
    namespace: str = ""
    shadow: bool = False
    replicas: int = 1  # of faust's changelog topics


class OnePartitionTable(faust.Table):  # type: ignore[misc]
    """A table whose changelog has one partition that every row goes to, whatever the input's partition: the
    tables fold topics of 1 and 3 partitions keyed by symbol, order id or model, so no input's partitioning is
    theirs. One worker holds the whole state."""

    def partition_for_key(self, key: Any) -> int | None:
        return 0


def _now_ns() -> int:
    return time.time_ns()


class Analytics:
    def __init__(
        self,
        config: AnalyticsConfig,
        rules: RuleSet,
        sink: Sink,
        broker: Broker,
        *,
        webhook: AlertmanagerWebhook | None = None,
        lag: LagReader | None = None,
        clock: Callable[[], int] = _now_ns,
    ) -> None:
        self.config, self.sink, self.webhook, self.lag, self.clock = config, sink, webhook, lag, clock
        self.names = TopicNames(broker.namespace)
        app_id = broker.namespace + PRODUCER + ("-shadow" if broker.shadow else "")
        self.app = faust.App(
            app_id,
            broker=broker.url,
            broker_credentials=broker.credentials,
            store="memory://",
            datadir=str(config.data_dir / app_id),
            web_enabled=False,
            topic_replication_factor=broker.replicas,
            topic_partitions=1,
            consumer_auto_offset_reset="earliest",
            topic_disable_leader=True,
            producer_acks=-1,
        )
        Path(self.app.conf.datadir).mkdir(parents=True, exist_ok=True)
        self.tables: dict[str, OnePartitionTable] = {}
        for name in TABLES:
            self.tables[name] = OnePartitionTable(self.app, name=name, partitions=1)
            self.app.tables.add(self.tables[name])
        self.windows = Windows(config.windows_s, config.window_keep_s)
        t = self.tables
        self.tca = Tca(t["tca"], t["orders"], t["signals"], self.windows)
        self.pnl = Pnl(t["pnl"], t["books"], t["fills"], config.timezone)
        self.quality = Quality(t["quality"], t["last_bars"], self.windows)
        self.dead_letters = DeadLetters(t["deadletters"], t["dlq_totals"], self.windows)
        self.limits = LimitUse(t["limits"])
        self.engine = AlertEngine(rules, t["alerts"])
        self.handlers: dict[str, Callable[[Any], Any]] = {
            "signal.signals.v1": self._on_signal,
            "oms.events.v1": self._on_order_event,
            "execution.reports.v1": self._on_report,
            "execution.quality.v1": self._on_quality,
            "marketdata.bars.v1": self._on_bar,
            "marketdata.quality.v1": self._on_score,
            "marketdata.sources.v1": self._on_switch,
            "oms.positions.v1": lambda m: self._observe(self.limits.on_position(m)),
            "risk.limits.v1": lambda m: self._observe(self.limits.on_limits(m)),
            "risk.equity.v1": lambda m: self._observe(self.limits.on_equity(m)),
            "oms.reconciliation.v1": lambda m: self._observe([reconciliation(m)]),
            "signal.monitoring.v1": lambda m: self._observe([drift(m)]),
        }
        unread = set(self.handlers) - set(ANALYTICS_READS)
        assert not unread, f"topics analytics may not read: {sorted(unread)}"
        self._pending: list[tuple[str, Message, str]] = []
        self.failing: str | None = None  # why the app is not healthy (a publish the bus refuses, a died agent)
        self.last_error = ""
        self.agents = {
            name: self.app.agent(self.app.topic(self.names.physical_input(name), value_serializer="raw"), name=name)(
                self._consumer(name)
            )
            for name in self.handlers
        }
        dlq = self.app.topic(*(self.names.physical_input(name) for name in DLQ_TOPICS), value_serializer="raw")
        self.agents[DEAD_LETTERS] = self.app.agent(dlq, name="dead-letters")(self._consumer(DEAD_LETTERS))
        self.app.timer(config.tick_s)(self.tick)
        if lag is not None:
            self.app.timer(config.lag_interval_s)(self.check_lag)

    # The runner's component protocol.
    async def start(self) -> None:
        if self.lag is not None:
            await self.lag.start()
        if self.webhook is not None:
            await self.webhook.start()
        await self.app.start()

    async def stop(self) -> None:
        await self.app.stop()
        if self.webhook is not None:
            await self.webhook.stop()
        if self.lag is not None:
            await self.lag.stop()

    def _consumer(self, name: str) -> Callable[[faust.StreamT[bytes]], Any]:
        async def consume(stream: faust.StreamT[bytes]) -> None:
            try:
                async for event in stream.events():
                    await self.handle(name, event.message)
            except Exception as error:  # never expected (handle sets records aside): the service must not look well
                self.failing = f"agent {name} died: {type(error).__name__}: {error}"
                raise

        consume.__name__ = consume.__qualname__ = f"consume_{name}"
        return consume

    async def handle(self, name: str, message: Any) -> None:
        """One input record of topic `name` (a registry name, or DEAD_LETTERS for any `.dlq`): decode, fold,
        publish what changed; a bad one is dead-lettered and skipped."""
        try:
            value = decode(DEAD_LETTER_TOPIC if name == DEAD_LETTERS else lookup(name), message.value)
        except BadRecord as bad:
            await self._dead_letter(message, name, bad.reason_code, bad.reason, None)
            return
        try:
            if name == DEAD_LETTERS:
                self._on_dead_letter(self._source_of(value), value)
            else:
                self.handlers[name](value)
        except Exception as error:  # a record this code cannot fold: set aside, never a stopped stream
            self._pending.clear()
            log.exception("record not folded: dead-lettered", topic=name, offset=message.offset)
            await self._dead_letter(message, name, "handler_error", f"{type(error).__name__}: {error}", error)
            return
        RECORDS.labels(name, "folded").inc()
        await self._flush()

    async def _dead_letter(self, message: Any, name: str, code: str, reason: str, error: Exception | None) -> None:
        RECORDS.labels(name, code).inc()
        if name == DEAD_LETTERS:  # a dead letter that is not one: logged, never a dead letter of a dead letter
            log.error("unreadable dead letter skipped", topic=name, offset=message.offset, reason=reason)
            return
        headers = {k: v if isinstance(v, bytes) else str(v).encode() for k, v in _headers(message).items()}
        letter = common_pb2.DeadLetter(
            envelope=new_envelope(self.app.conf.id),
            source_topic=message.topic,
            source_partition=message.partition,
            source_offset=message.offset,
            key=message.key or b"",
            value=message.value or b"",
            headers=headers,
            reason_code=code,
            reason=reason[:1000],
            consumer_group=self.app.conf.id,
            error_type=type(error).__name__ if error is not None else "",
            source_timestamp_ms=int((message.timestamp or 0) * 1000),
            attempts=1,
        )
        await self._deliver(lambda: self.sink.publish_dead_letter(letter, name), f"dead letter of {name}")

    async def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for topic, row, key in pending:
            await self._deliver(functools.partial(self.sink.publish, topic, row, key=key), topic)
            ROWS.labels(topic).inc()

    async def _deliver(self, send: Callable[[], Awaitable[Any]], what: str) -> None:
        """Send until the bus takes it (backoff capped at 5 s): the record's offset is not committed meanwhile, and
        health is NOT_SERVING (`healthy`) while the bus refuses."""
        delay = 0.2
        while True:
            try:
                await send()
                self.failing = None
                return
            except Exception as error:
                self.failing = f"publishing {what}: {type(error).__name__}: {error}"[:500]
                log.error("bus refused a publish; retrying", what=what, error=self.failing, retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def healthy(self) -> bool:
        """The runner's health check: False while publishing fails or an agent has died."""
        self.last_error = self.failing or ""
        return self.failing is None

    def _source_of(self, letter: common_pb2.DeadLetter) -> str:
        """The registry name of a dead letter's source topic (its physical name without namespace or shadow)."""
        name = self.names.logical(letter.source_topic).removeprefix(SHADOW_PREFIX)
        return lookup(name).name

    def _emit(self, topic: str, row: Message, key: str) -> None:
        self._pending.append((topic, row, key))

    def _tca_rows(self, changes: tca.Changes) -> None:
        for key in dict.fromkeys(changes.rows):
            self._emit("analytics.execution.v1", tca.row_message(self.tables["tca"][key]), key)
        self._observe(changes.observations)

    def _pnl_rows(self, keys: list[str]) -> None:
        for key in keys:
            self._emit("analytics.pnl.v1", self.pnl.row_message(key), key)

    def _quality_rows(self, keys: list[str]) -> None:
        for key in keys:
            self._emit("analytics.quality.v1", quality.row_message(self.tables["quality"][key]), key)

    def _observe(self, observations: list[Observation]) -> None:
        for observation in observations:
            for alert in self.engine.observe(observation):
                self._emit("analytics.alerts.v1", alert, alert_key(alert.rule, alert.subject))
                if self.webhook is not None:
                    self.webhook.offer(alert)

    def _on_signal(self, signal: Any) -> None:
        self.tca.on_signal(signal)

    def _on_order_event(self, event: Any) -> None:
        self._tca_rows(self.tca.on_order_event(event))
        self._pnl_rows(self.pnl.on_order_event(event))

    def _on_report(self, report: Any) -> None:
        self._tca_rows(self.tca.on_report(report))

    def _on_quality(self, measured: Any) -> None:
        self._tca_rows(self.tca.on_quality(measured))

    def _on_bar(self, bar: Any) -> None:
        price = Decimal(repr(bar.close))
        self.tca.on_price(bar.symbol, price)
        self._pnl_rows(self.pnl.on_mark(bar.symbol, price, bar.envelope.ts_init or self.clock()))
        self._quality_rows(self.quality.on_bar(bar))

    def _on_score(self, scored: Any) -> None:
        keys, observations = self.quality.on_score(scored)
        self._quality_rows(keys)
        self._observe(observations)

    def _on_switch(self, switched: Any) -> None:
        self._quality_rows(self.quality.on_switch(switched))

    def _on_dead_letter(self, source: str, letter: Any) -> None:
        keys, observations = self.dead_letters.on_dead_letter(source, letter)
        for key in keys:
            row = self.tables["deadletters"][key]
            self._emit("analytics.deadletters.v1", deadletters.row_message(row), key)
        self._observe(observations)

    async def tick(self) -> None:
        """Time passes without events: windows close (the dead-letter count of a new window is 0, which resolves
        its alert), old rows and orders leave the tables."""
        now = self.clock()
        self._observe([self.dead_letters.observation(topic, now) for topic in self.dead_letters.topics()])
        for name in ("tca", "quality", "deadletters"):
            evict(self.tables[name], self.windows, now)
        self.tca.forget(now)
        self.pnl.forget(now, self.config.window_keep_s)
        await self._flush()

    async def check_lag(self) -> None:
        assert self.lag is not None
        try:
            lags = await self.lag.lags()
        except Exception as error:  # the admin API did not answer: no lag observed this time (logged)
            log.warning("consumer lag not read", error=f"{type(error).__name__}: {error}")
            return
        now = self.clock()
        self._observe([Observation("consumer_lag", group, float(lag), now) for group, lag in lags.items()])
        await self._flush()


def _headers(message: Any) -> dict[str, Any]:
    headers = message.headers or {}
    return dict(headers.items()) if isinstance(headers, dict) else dict(headers)
