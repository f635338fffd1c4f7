"""Market data onto the bus through librdkafka (confluent-kafka): a record is handed to the producer's queue and the
stream goes on, the acks come back in batches.

The fan-out of market data is thousands of records a second whose sends do not depend on each other, so nothing
waits for an ack: librdkafka batches per partition (`linger.ms`), retries on its own (idempotent, acks=all, so a
retried batch is written once and a key's records stay in order) and reports each record's fate in a delivery
callback, served by a task that polls the producer. A record the bus did not take within `message.timeout.ms` is
counted per topic (`marketdata_publish_failures_total`) and logged: never a silent loss.

Backpressure instead of loss: when the producer's queue is full (`queue.buffering.max.messages`), `send` waits for
room, so the stream's reader stops reading and the broker's stream (the paper exchange) blocks behind it.

Tracing: a bar's record carries the trace context of a span of its own (one trace runs bar -> signal -> order ->
fill); quotes and trades, which nothing on the order path reads, carry none (a span each would cost more than the
record).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import Counter
from typing import Any, cast

import confluent_kafka
from google.protobuf.message import Message
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter as MetricCounter
from trading.common.v1 import common_pb2
from trading_platform.envelope import envelope_of
from trading_platform.messaging import KafkaConnection
from trading_platform.messaging.connection import BrokerUnavailableError
from trading_platform.messaging.names import TopicNames, headers_for
from trading_platform.messaging.producer import MessageTypeError
from trading_platform.observability import get_logger
from trading_platform.topics import lookup

log = get_logger("market-data")
tracer = trace.get_tracer("marketdata_service")
PUBLISH_FAILURES = MetricCounter("marketdata_publish_failures_total", "records the bus did not acknowledge", ["topic"])
POLL_INTERVAL_S = 0.005  # how often delivery callbacks are served
ROOM_WAIT_S = 0.002  # how long a send waits before it tries a full queue again
TRACED = {"marketdata.bars.v1"}


class Fanout:
    """`await fanout.send(topic, message, key)` hands a registry-typed message to librdkafka; `start()`/`stop()`."""

    def __init__(
        self,
        connection: KafkaConnection,
        producer_name: str,
        *,
        namespace: str = "",
        shadow: bool = False,
        linger_ms: int = 5,
        max_queued: int = 100_000,
        delivery_timeout_ms: int = 120_000,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.connection = connection
        self.names = TopicNames(namespace, shadow)
        self.start_timeout_s = start_timeout_s
        self.config: dict[str, Any] = {
            **connection.librdkafka_config(),
            "client.id": producer_name,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": linger_ms,
            "queue.buffering.max.messages": max_queued,
            "message.timeout.ms": delivery_timeout_ms,
            "log_level": 3,
        }
        self._producer: confluent_kafka.Producer | None = None
        self._poller: asyncio.Task[None] | None = None
        self.sent = 0
        self.acked: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.waits_for_room = 0  # sends that found the queue full and waited (backpressure)

    async def start(self) -> None:
        producer = confluent_kafka.Producer(self.config)
        try:  # librdkafka connects lazily: ask for metadata so that an unreachable cluster fails the start
            await asyncio.to_thread(producer.list_topics, timeout=self.start_timeout_s)
        except confluent_kafka.KafkaException as error:
            raise BrokerUnavailableError(
                f"Kafka at {self.connection.bootstrap_servers} did not answer within {self.start_timeout_s:g} s "
                f"({error})"
            ) from error
        self._producer = producer
        self._poller = asyncio.create_task(self._poll())

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to timeout_s), then stop serving callbacks."""
        if self._producer is None:
            return
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        left = await asyncio.to_thread(self._producer.flush, timeout_s)
        if left:
            log.error("market data not delivered at stop", records=left)
        self._producer = None

    @property
    def queued(self) -> int:
        """Records handed over and not yet acknowledged (or failed)."""
        return len(self._producer) if self._producer is not None else 0

    async def send(self, topic: str, message: Message, key: str) -> None:
        """Queue a message for its topic (registry name); waits only while the producer's queue is full."""
        registered = lookup(topic)
        if not isinstance(message, registered.message_type):
            raise MessageTypeError(f"{topic} carries {registered.type_name}, not {message.DESCRIPTOR.full_name}")
        if not envelope_of(message).message_id:
            raise ValueError(f"{message.DESCRIPTOR.full_name} has no envelope.message_id: use new_envelope()")
        physical = self.names.physical(topic)
        if topic in TRACED:
            with tracer.start_as_current_span(f"publish {topic}", kind=SpanKind.PRODUCER) as span:
                span.set_attribute("messaging.system", "kafka")
                span.set_attribute("messaging.destination.name", physical)
                span.set_attribute("messaging.message.id", envelope_of(message).message_id)
                headers = headers_for(message, registered.type_name)
        else:
            headers = headers_for(message, registered.type_name)
        await self._produce(topic, physical, message.SerializeToString(), key.encode(), headers)

    async def dead_letter(self, dead_letter: common_pb2.DeadLetter, source_topic: str) -> None:
        """A dead letter to the live `<source_topic>.dlq`, keyed as its source record."""
        headers = headers_for(dead_letter, common_pb2.DeadLetter.DESCRIPTOR.full_name)
        physical = self.names.dead_letters(source_topic)
        await self._produce(
            source_topic + ".dlq", physical, dead_letter.SerializeToString(), dead_letter.key or None, headers
        )

    async def _produce(
        self, topic: str, physical: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        producer = self._producer
        if producer is None:
            raise RuntimeError("the market-data fan-out is not started")
        done = functools.partial(self._done, topic)
        wire = cast("list[tuple[str, str | bytes | None]]", headers)
        while True:
            try:
                producer.produce(physical, value, key, headers=wire, on_delivery=done)
                break
            except BufferError:  # the queue is full: wait for acks to make room (the stream's reader waits too)
                self.waits_for_room += 1
                producer.poll(0)
                await asyncio.sleep(ROOM_WAIT_S)
        self.sent += 1

    def _done(self, topic: str, error: confluent_kafka.KafkaError | None, _: confluent_kafka.Message) -> None:
        if error is None:
            self.acked[topic] += 1
            return
        self.failed[topic] += 1
        PUBLISH_FAILURES.labels(topic).inc()
        if self.failed[topic] <= 10 or self.failed[topic] % 1000 == 0:
            failed = self.failed[topic]
            log.error("market data not acknowledged by the bus", topic=topic, error=str(error), failed=failed)

    async def _poll(self) -> None:
        while True:
            producer = self._producer
            if producer is not None:
                with contextlib.suppress(Exception):
                    producer.poll(0)
            await asyncio.sleep(POLL_INTERVAL_S)
