"""Once over the real broker (the embedded Apache Kafka): records published to the platform's topics come out of
the faust app as the right analytics.* rows, a malformed record is dead-lettered and counted, consumer lag is read
from the Kafka admin API, and the alerts reach a real HTTP webhook receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from analytics_service.config import AnalyticsConfig
from analytics_service.lag import LagReader
from analytics_service.streams import DLQ_TOPICS, Analytics, Broker
from analytics_service.webhook import AlertmanagerWebhook
from google.protobuf.message import Message
from trading.analytics.v1 import analytics_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.messaging.admin import ensure_topics
from trading_platform.messaging.connection import KafkaConnection
from trading_platform.messaging.producer import Publisher
from trading_platform.topics import ANALYTICS_READS, lookup

from tests.services.analytics.helpers import envelope, filled_order, rules
from tests.services.analytics.receiver import alertmanager

pytestmark = pytest.mark.integration

OUTPUTS = ("analytics.execution.v1", "analytics.pnl.v1", "analytics.quality.v1", "analytics.deadletters.v1",
           "analytics.alerts.v1")  # fmt: skip
PRODUCERS = {"signal.signals.v1": "signal", "oms.events.v1": "order-management",
             "execution.quality.v1": "execution", "oms.reconciliation.v1": "order-management"}  # fmt: skip
RULES = rules(
    """
version: kafka-1
rules:
  reconciliation_mismatch: {metric: reconciliation_mismatches, above: 0, severity: critical}
  consumer_lag_high: {metric: consumer_lag, above: 2}
  dead_letters_growing: {metric: dead_letters, above: 0}
"""
)


class Outputs:
    """Reads the analytics.* topics from the beginning; the latest value per key, decoded."""

    def __init__(self, consumer: AIOKafkaConsumer, namespace: str) -> None:
        self.consumer, self.namespace = consumer, namespace
        self.latest: dict[tuple[str, str], Message] = {}
        self.all: list[tuple[str, Message]] = []

    async def until(self, done: Callable[[], bool], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, f"not seen in {timeout_s} s; seen: {sorted(self.latest)}"
            for tp, records in (await self.consumer.getmany(timeout_ms=300)).items():
                name = tp.topic.removeprefix(self.namespace)
                for record in records:
                    message = lookup(name).message_type.FromString(record.value)
                    self.latest[(name, record.key.decode())] = message
                    self.all.append((name, message))

    def get(self, topic: str, key: str) -> Any:
        return self.latest.get((topic, key))


async def test_records_on_kafka_come_out_as_analytics_rows_and_alerts_reach_the_webhook(
    kafka_connection: KafkaConnection, topic_namespace: str, tmp_path: Path
) -> None:
    ns = topic_namespace
    await ensure_topics(kafka_connection, [*ANALYTICS_READS, *DLQ_TOPICS, *OUTPUTS], namespace=ns)
    lag_group = f"{ns}lagged"
    async with alertmanager() as receiver:
        config = AnalyticsConfig(data_dir=tmp_path / "faust", tick_s=0.5, lag_interval_s=0.5)
        publisher = Publisher(kafka_connection, "analytics", namespace=ns)
        analytics = Analytics(
            config,
            RULES,
            publisher,
            Broker(f"kafka://{kafka_connection.bootstrap_servers}", namespace=ns),
            webhook=AlertmanagerWebhook(receiver.url, backoff_s=0.1),
            lag=LagReader(kafka_connection, ("lagged",), namespace=ns),
        )
        out_consumer = AIOKafkaConsumer(
            *(ns + name for name in OUTPUTS),
            **kafka_connection.client_options(),
            auto_offset_reset="earliest",
        )
        raw = AIOKafkaProducer(**kafka_connection.client_options())
        lagged = AIOKafkaConsumer(**kafka_connection.client_options(), group_id=lag_group, enable_auto_commit=False)
        outputs = Outputs(out_consumer, ns)
        publishers = {name: Publisher(kafka_connection, name, namespace=ns) for name in set(PRODUCERS.values())}
        try:
            await publisher.start()
            await analytics.start()
            await out_consumer.start()
            await raw.start()
            await lagged.start()
            for each in publishers.values():
                await each.start()
            # One order's life: decision, events of record, fill, execution's measure.
            ts = time.time_ns()
            for topic, message in filled_order("co-k1", "AAPL", "100", "100.05", ts, slippage=5.0):
                await publishers[PRODUCERS[topic]].publish(topic, message, key="AAPL")
            # A record that is not an OrderEvent: dead-lettered by analytics, then counted from the .dlq.
            await raw.send_and_wait(ns + "oms.events.v1", b"\x08\xff\xff not protobuf", key=b"co-bad")
            mismatch = oms_pb2.ReconciliationCompleted(envelope=envelope(ts), matched=False, mismatches=["AAPL"])
            await publishers["order-management"].publish("oms.reconciliation.v1", mismatch, key="_account")
            # A consumer group 3 records behind on a topic of its own.
            for number in range(3):
                await raw.send_and_wait(ns + "oms.events.v1.dlq", b"", key=str(number).encode(), partition=0)
            lagged.assign([TopicPartition(ns + "oms.events.v1.dlq", 0)])
            await lagged.commit({TopicPartition(ns + "oms.events.v1.dlq", 0): 0})

            window = ts - ts % (60 * 10**9)
            minute_key = f"AAPL|{window}|{window + 60 * 10**9}"
            await outputs.until(
                lambda: (
                    outputs.get("analytics.execution.v1", minute_key) is not None
                    and outputs.get("analytics.execution.v1", minute_key).arrival_slippage_bps == 5.0
                )
            )
            row = outputs.get("analytics.execution.v1", minute_key)
            assert (row.orders, row.filled_orders, row.fill_ratio) == (1, 1, 1.0)
            assert row.implementation_shortfall_bps == pytest.approx(5.0)
            assert row.filled_notional.value == "1000.5"
            day = analytics.pnl.day(ts)
            await outputs.until(lambda: outputs.get("analytics.pnl.v1", f"{day}|AAPL") is not None)
            assert outputs.get("analytics.pnl.v1", f"{day}|AAPL").position.value == "10"

            def dead_letter_minutes() -> list[Any]:  # the minute the app dead-lettered it in (it stamps the time)
                return [
                    row
                    for (topic, key), row in outputs.latest.items()
                    if topic == "analytics.deadletters.v1"
                    and key.startswith("oms.events.v1|")
                    and row.window_end - row.window_start == 60 * 10**9
                ]

            await outputs.until(lambda: bool(dead_letter_minutes()))
            (letters,) = dead_letter_minutes()
            assert (letters.count, letters.total, dict(letters.by_reason)) == (1, 1, {"decode_error": 1})

            def alert(rule: str, subject: str) -> Any:
                return outputs.get("analytics.alerts.v1", f"{rule}|{subject}")

            await outputs.until(lambda: alert("reconciliation_mismatch", "_account") is not None)
            assert alert("reconciliation_mismatch", "_account").status == analytics_pb2.ALERT_STATUS_FIRING
            await outputs.until(lambda: alert("consumer_lag_high", "lagged") is not None)
            assert alert("consumer_lag_high", "lagged").value == 3.0
            await lagged.commit({TopicPartition(ns + "oms.events.v1.dlq", 0): 3})  # caught up
            await outputs.until(
                lambda: alert("consumer_lag_high", "lagged").status == analytics_pb2.ALERT_STATUS_RESOLVED
            )

            bodies = await receiver.wait_for(3)
            delivered = [(b[0]["labels"]["alertname"], "endsAt" in b[0]) for b in bodies]
            assert ("reconciliation_mismatch", False) in delivered
            assert ("consumer_lag_high", False) in delivered
            await asyncio.wait_for(_delivered(receiver, ("consumer_lag_high", True)), 30)
            firing = next(b[0] for b in bodies if b[0]["labels"]["alertname"] == "reconciliation_mismatch")
            assert firing["labels"]["severity"] == "critical" and firing["labels"]["rules_version"] == "kafka-1"
        finally:
            for each in publishers.values():
                await each.stop()
            await lagged.stop()
            await raw.stop()
            await out_consumer.stop()
            await analytics.stop()
            await publisher.stop()


async def _delivered(receiver: Any, wanted: tuple[str, bool]) -> None:
    while wanted not in [(b[0]["labels"]["alertname"], "endsAt" in b[0]) for b in receiver.bodies]:
        await asyncio.sleep(0.1)
