"""Typed publish/subscribe over Kafka (aiokafka), the way every service uses the bus.

- Publishing is typed by the topic registry: a message of the wrong type for a topic raises. The envelope's fields
  and the W3C trace context travel in Kafka headers; `publish` waits for the broker's ack.
- Consuming commits an offset only after the handler returned (DESIGN.md invariant 3), skips a message whose
  envelope.message_id was already handled (the idempotency store is marked only after success), sends anything it
  cannot decode or that fails permanently to `<topic>.dlq` as a DeadLetter with the reason, and carries on.
  Transient handler errors are retried with backoff a bounded number of times, then dead-lettered.
- `stop()` drains: the in-flight message finishes and is committed before the consumer closes.
- By default a consumer handles one record at a time. With `concurrent_keys=True` it handles them in lanes, one per
  partition and key: each key's records in their order, different keys side by side, and fetching goes on while the
  lanes work (at most `max_in_flight` records outstanding). A partition commits only the run of handled records from
  its oldest outstanding one, and a partition taken away in a rebalance is settled (its lanes finish, its offsets are
  committed) before it goes. For handlers whose state is per key or locked per key: the order path's services.
- No idempotent producer and no transactions: the Tansu broker does not support them (DESIGN.md section 5), and the
  application is idempotent by message id instead.

Wake-ups (the doorbell). A Kafka broker answers a long-polling fetch as soon as data arrives, so a consumer's hop
costs about a network round trip. The embedded broker (Tansu) does not answer a waiting fetch as soon as data
arrives, and it spends CPU for as long as a fetch waits: a hop grows with fetch_max_wait_ms, and a short wait costs
a lot of CPU (a consumer polling every millisecond: ~30% of a core here, broker and client together; see
tests/benchmarks/bench_broker_wakeups.py). With `doorbell_url` set (a Redis URL; `kafka.doorbell` in the settings),
a publisher rings `doorbell:<topic>` over Redis pub/sub as it sends a record, and a consumer keeps its partitions
paused while idle: a ring wakes it, it polls every fetch_max_wait_ms until hot_window_ms have passed since its last
record (long enough for the record to land), and it looks once every idle_poll_ms in case a ring was lost. A
consumer off the order path (audit) sleeps the same way without a doorbell: it wakes every idle_poll_ms and drains
what came meanwhile. The data still comes only from Kafka, with the same offsets, commits and ordering; a ring is a
hint that carries nothing. Off by default and for a real Kafka cluster, which needs none of it.

Two name transformations apply to every topic: a `namespace` prefix (test isolation: each test gets its own topics)
and shadow mode (the idle blue-green colour publishes to `shadow.<topic>` and consumes in `<group>-shadow`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord
from google.protobuf.message import DecodeError, Message
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from redis.asyncio import Redis
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential
from trading.common.v1 import common_pb2

from trading_platform.envelope import envelope_of, new_envelope
from trading_platform.topics import DLQ_SUFFIX, SHADOW_PREFIX, Topic, lookup

tracer = trace.get_tracer("trading_platform.messaging")
log = structlog.get_logger("trading_platform.messaging")

HEADER_MESSAGE_TYPE = "message_type"
# Group timing. The broker waits up to rebalance_timeout_ms for members to (re)join, which is what a consumer's
# start-up costs; a crashed member's partitions move after session_timeout_ms. Tune per deployment via settings.
# fetch_max_wait_ms bounds latency: the embedded broker does not wake a waiting fetch as soon as data arrives, so a
# small value is what makes a bar -> signal hop take milliseconds (see the module doc on wake-ups).
DEFAULT_GROUP_OPTIONS = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 500,
    "rebalance_timeout_ms": 2000,
    "fetch_max_wait_ms": 5,
}
ENVELOPE_HEADERS = ("message_id", "correlation_id", "causation_id", "ts_event", "producer", "schema_version")


class PermanentError(Exception):
    """Raised by a handler for a message that can never succeed: it is dead-lettered at once, not retried."""

    def __init__(self, reason: str, reason_code: str = "handler_rejected") -> None:
        super().__init__(reason)
        self.reason_code = reason_code


class ConsumerJoinError(RuntimeError):
    """A consumer could not join its group: it never got partitions."""


class MessageTypeError(TypeError):
    """A message of the wrong type for a topic."""


@dataclass(frozen=True)
class ConsumedMessage:
    topic: str  # the registry name (namespace and shadow prefix removed)
    partition: int
    offset: int
    key: str | None
    value: Message
    headers: dict[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0

    @property
    def envelope(self) -> common_pb2.Envelope:
        return envelope_of(self.value)


Handler = Callable[[ConsumedMessage], Awaitable[None]]


class IdempotencyStore(Protocol):
    async def seen(self, message_id: str) -> bool: ...

    async def mark(self, message_id: str) -> None: ...


class MemoryIdempotencyStore:
    """Remembers handled message ids in process (for services whose state is rebuilt with the ids, and tests)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    async def seen(self, message_id: str) -> bool:
        return message_id in self._ids

    async def mark(self, message_id: str) -> None:
        self._ids.add(message_id)


class RedisIdempotencyStore:
    """Handled message ids in Redis, so a restarted consumer (or another pod of it) skips them too."""

    def __init__(self, redis_client: Redis, namespace: str, ttl_s: int = 7 * 24 * 3600) -> None:
        self._redis = redis_client  # a redis.asyncio.Redis
        self._prefix = f"{namespace}:handled:"
        self._ttl_s = ttl_s

    def key(self, message_id: str) -> str:
        """The Redis key that marks a message handled: a handler whose effect is in Redis sets it in the same
        MULTI/EXEC as its effect, so effect and mark are atomic."""
        return self._prefix + message_id

    async def seen(self, message_id: str) -> bool:
        return bool(await self._redis.exists(self.key(message_id)))

    async def mark(self, message_id: str) -> None:
        await self._redis.set(self.key(message_id), b"1", ex=self._ttl_s)


@dataclass(frozen=True)
class TopicNames:
    """Maps registry names to the physical topic names of one deployment (namespace, shadow colour)."""

    namespace: str = ""
    shadow: bool = False

    def physical(self, name: str) -> str:
        topic = lookup(name)  # raises UnknownTopicError for anything not registered
        base = SHADOW_PREFIX + topic.name if self.shadow and not topic.name.endswith(DLQ_SUFFIX) else topic.name
        return self.namespace + base

    def physical_input(self, name: str) -> str:
        """Inputs are read from the live topics even in shadow mode (the shadow colour sees the same inputs)."""
        return self.namespace + lookup(name).name

    def logical(self, physical: str) -> str:
        name = physical[len(self.namespace) :] if self.namespace and physical.startswith(self.namespace) else physical
        return name


def _headers_for(message: Message, message_type: str) -> list[tuple[str, bytes]]:
    envelope = envelope_of(message)
    headers = [(HEADER_MESSAGE_TYPE, message_type.encode())]
    headers += [(name, str(getattr(envelope, name)).encode()) for name in ENVELOPE_HEADERS]
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    headers += [(k, v.encode()) for k, v in carrier.items()]
    return headers


DOORBELL_PREFIX = "doorbell:"
JOIN_WAITS = 5
IDLE_LOOK_S = 0.005  # how long an idle poll looks for records before the consumer sleeps again


class Doorbell:
    """Redis pub/sub wake-ups for consumers of a broker whose fetches do not wake on new data (see the module doc)."""

    def __init__(self, redis_url: str) -> None:
        self._redis: Redis = Redis.from_url(redis_url)
        self._pending: set[asyncio.Task[int]] = set()
        self.rings = 0

    @staticmethod
    def channel(physical_topic: str) -> str:
        return DOORBELL_PREFIX + physical_topic

    def ring(self, physical_topic: str) -> None:
        """Tell the topic's consumers there is something to fetch; never waits, never fails the publish."""
        task = asyncio.ensure_future(self._redis.publish(self.channel(physical_topic), b""))
        self._pending.add(task)
        task.add_done_callback(self._done)
        self.rings += 1

    def _done(self, task: asyncio.Task[int]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:  # consumers still poll every idle_poll_ms
            log.debug("doorbell ring failed", error=str(task.exception()))

    async def listen(self, physical_topics: Iterable[str], rung: asyncio.Event) -> None:
        """Set `rung` on every ring for these topics until cancelled; resubscribes after a lost connection."""
        channels = [self.channel(t) for t in physical_topics]
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(*channels)
                rung.set()  # whatever was rung while we were not listening: look once
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        rung.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away: the consumer falls back to its idle poll meanwhile
                log.warning("doorbell subscription lost; retrying", error=str(error))
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._redis.aclose()


class Publisher:
    """Publishes registry-typed messages; `async with Publisher(...) as publisher:` or start()/stop()."""

    def __init__(
        self,
        bootstrap_servers: str,
        producer_name: str,
        *,
        namespace: str = "",
        shadow: bool = False,
        linger_ms: int = 0,
        doorbell_url: str | None = None,
    ) -> None:
        self.producer_name = producer_name
        self.names = TopicNames(namespace, shadow)
        self.doorbell = Doorbell(doorbell_url) if doorbell_url else None
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=producer_name,
            acks="all",
            linger_ms=linger_ms,
            enable_idempotence=False,  # the broker lacks InitProducerId; idempotency is the consumers'
        )
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self._producer.start()
            self._started = True

    async def stop(self) -> None:
        if self._started:
            await self._producer.flush()
            await self._producer.stop()
            self._started = False
        if self.doorbell is not None:
            await self.doorbell.aclose()

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def publish(self, topic: str, message: Message, key: str) -> tuple[int, int]:
        """Publish and wait for the ack; returns (partition, offset)."""
        metadata = await (await self.send(topic, message, key, span_until_ack=True))
        return metadata.partition, metadata.offset

    async def send(
        self, topic: str, message: Message, key: str, *, span_until_ack: bool = False
    ) -> asyncio.Future[Any]:
        """Hand a message to the producer and return its ack as a future, without waiting for it (it waits only
        when the producer's buffer is full). Records of one key keep their order. For a source whose messages do
        not depend on each other's acks (market data): the caller must watch the future, since a failure is only
        reported there."""
        registered = lookup(topic)
        if not isinstance(message, registered.message_type):
            raise MessageTypeError(f"{topic} carries {registered.type_name}, not {message.DESCRIPTOR.full_name}")
        if not envelope_of(message).message_id:
            raise ValueError(f"{message.DESCRIPTOR.full_name} has no envelope.message_id: use new_envelope()")
        physical = self.names.physical(topic)
        span = tracer.start_span(f"publish {registered.name}", kind=SpanKind.PRODUCER)
        # The consumer's span is this span's child (trace context in the headers); the span ends at the ack when
        # the caller waits for it, else when the record is handed to the producer.
        with trace.use_span(span, end_on_exit=not span_until_ack):
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", physical)
            span.set_attribute("messaging.message.id", envelope_of(message).message_id)
            try:
                delivery = await self._producer.send(
                    physical,
                    message.SerializeToString(),
                    key=key.encode(),
                    headers=_headers_for(message, registered.type_name),
                )
            except BaseException:
                span.end()
                raise
            if self.doorbell is not None:  # rung as the record leaves: the consumer stays hot until it is there
                self.doorbell.ring(physical)
        if span_until_ack:
            delivery.add_done_callback(lambda _: span.end())
        return delivery

    async def publish_dead_letter(self, dead_letter: common_pb2.DeadLetter, source_topic: str) -> None:
        """Dead letters keep the source's key; they go to the live `<topic>.dlq` even from a shadow colour."""
        physical = self.names.namespace + lookup(source_topic).name + DLQ_SUFFIX
        await self._producer.send_and_wait(
            physical,
            dead_letter.SerializeToString(),
            key=dead_letter.key or None,
            headers=_headers_for(dead_letter, common_pb2.DeadLetter.DESCRIPTOR.full_name),
        )


class Consumer:
    """Consumes registry topics in a consumer group, one message at a time, commit after the handler."""

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        topics: Iterable[str],
        handler: Handler,
        *,
        publisher: Publisher | None = None,
        idempotency: IdempotencyStore | None = None,
        namespace: str = "",
        shadow: bool = False,
        max_attempts: int = 3,
        retry_initial_s: float = 0.05,
        auto_offset_reset: str = "earliest",
        group_options: dict[str, int] | None = None,
        concurrent_keys: bool = False,
        max_in_flight: int = 100,
        doorbell_url: str | None = None,
        idle_poll_ms: int | None = None,
        hot_window_ms: int = 20,
    ) -> None:
        # concurrent_keys: the records of a fetched batch are handled in lanes, one per partition and key, side by
        # side; each lane in its order (records of one key stay in order, as Kafka orders them). Only for handlers
        # whose state is per key or guarded per key (a signal per symbol, an order per client order id): a burst of
        # four symbols' records then costs one handler's time, not four. Fetching goes on while lanes work, up to
        # max_in_flight records outstanding.
        self.lanes = _Lanes(self._handle, self._should_stop, max_in_flight) if concurrent_keys else None
        self.names = TopicNames(namespace, shadow)
        self.topics = [lookup(t).name for t in topics]
        self.group_id = group_id + ("-shadow" if shadow else "")
        self.handler = handler
        self.idempotency = idempotency if idempotency is not None else MemoryIdempotencyStore()
        self.max_attempts = max_attempts
        self.retry_initial_s = retry_initial_s
        self._owns_publisher = publisher is None
        self.publisher = publisher or Publisher(bootstrap_servers, f"{group_id}-dlq", namespace=namespace)
        # Sleeping between spells (module doc): with a doorbell, or with idle_poll_ms alone (a consumer off the
        # order path, such as audit, that reads in batches), the partitions stay paused while idle and nothing is
        # fetched until a ring or idle_poll_ms wakes them. Without either, the consumer polls all the time.
        self.doorbell = Doorbell(doorbell_url) if doorbell_url else None
        self.sleeps = self.doorbell is not None or idle_poll_ms is not None
        self.idle_poll_s = (idle_poll_ms if idle_poll_ms is not None else 100) / 1000
        self.hot_window_s = hot_window_ms / 1000
        self._rung = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        options = {**DEFAULT_GROUP_OPTIONS, **(group_options or {})}
        # A join normally completes within a rebalance, or a session timeout when a member died without leaving.
        self.join_timeout_s = (options["session_timeout_ms"] + options["rebalance_timeout_ms"]) / 1000 + 5
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=auto_offset_reset,
            client_id=self.group_id,
            **options,
        )
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self.handled = 0
        self.dead_lettered = 0
        self.duplicates_skipped = 0

    async def start(self) -> None:
        await self.publisher.start()
        await self._join()
        if self.doorbell is not None:
            inputs = [self.names.physical_input(t) for t in self.topics]
            self._listener = asyncio.create_task(self.doorbell.listen(inputs, self._rung))

    async def _join(self) -> None:
        """Join the group: start() returns once partitions are assigned. A join that goes unanswered is logged every
        join_timeout_s, and after JOIN_WAITS of them the start fails naming the group, rather than hanging unseen.
        The embedded broker leaves a join unanswered for good when the group's previous member leaves at the same
        moment (reproduced; joining again as a new member does not help), which is why blue-green colours of a
        service hand over through the live lease (trading_platform.deployment)."""
        # With lanes, a partition taken away in a rebalance is first settled: its lanes finish, its handled records
        # are committed, so the next owner starts where this one stopped.
        listener = _SettleOnRevoke(self.lanes, self._consumer) if self.lanes is not None else None
        self._consumer.subscribe([self.names.physical_input(t) for t in self.topics], listener=listener)
        joining = asyncio.ensure_future(self._consumer.start())
        for wait in range(1, JOIN_WAITS + 1):
            done, _ = await asyncio.wait({joining}, timeout=self.join_timeout_s)
            if done:
                joining.result()
                return
            log.warning(
                "consumer group join unanswered", group=self.group_id, waited_s=round(wait * self.join_timeout_s)
            )
        joining.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._consumer.stop(), 5)
        raise ConsumerJoinError(
            f"consumer group {self.group_id!r} got no partitions in {JOIN_WAITS * self.join_timeout_s:.0f} s: is the "
            "Kafka broker up, and did another member of the group leave while this one joined?"
        )

    async def _sleep_until_rung(self) -> bool:
        """Idle: no fetches until a ring (or idle_poll_s, in case a ring was lost). True when rung."""
        assigned = self._consumer.assignment()
        if assigned:
            self._consumer.pause(*assigned)
        stopping = asyncio.ensure_future(self._stopping.wait())
        rung = asyncio.ensure_future(self._rung.wait())
        try:
            await asyncio.wait({stopping, rung}, timeout=self.idle_poll_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            rung.cancel()
        woken = self._rung.is_set()
        self._rung.clear()
        assigned = self._consumer.assignment()
        if assigned:
            self._consumer.resume(*assigned)
        return woken

    async def _fetch_timeout_ms(self, hot_until: float, busy: bool) -> tuple[int, float]:
        """How long the next fetch may wait, sleeping first if the consumer sleeps and is idle (module doc)."""
        if not self.sleeps:
            return (10 if busy else 100), hot_until
        if busy:
            hot_until = max(hot_until, time.monotonic() + self.hot_window_s)
        elif time.monotonic() >= hot_until:
            # Rung: hot for a spell. The idle poll: one fetch's worth, then asleep again if empty.
            spell = self.hot_window_s if await self._sleep_until_rung() else IDLE_LOOK_S
            hot_until = time.monotonic() + spell
        return max(1, int((hot_until - time.monotonic()) * 1000)), hot_until

    async def run(self) -> None:
        """Consume until stop(). Call start() first (or use run_forever())."""
        try:
            if self.lanes is not None:
                await self._run_lanes(self.lanes)
                return
            hot_until = 0.0
            while not self._stopping.is_set():
                timeout_ms, hot_until = await self._fetch_timeout_ms(hot_until, busy=False)
                if self._stopping.is_set():
                    break
                batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=100)
                handled: dict[TopicPartition, int] = {}
                try:
                    for partition, records in batch.items():
                        for record in records:
                            if self._stopping.is_set():
                                break  # drain: unhandled records stay uncommitted and are redelivered
                            await self._handle(record)
                            handled[partition] = record.offset + 1
                finally:
                    # One commit per fetched batch, of handled records only: a crash before it redelivers them,
                    # and the idempotency store makes the second handling a no-op (DESIGN.md invariant 3).
                    if handled:
                        await self._consumer.commit(handled)
                    if batch:  # hot from the end of the work: records may have arrived meanwhile
                        hot_until = time.monotonic() + self.hot_window_s
        finally:
            self._stopped.set()

    async def _run_lanes(self, lanes: _Lanes) -> None:
        """concurrent_keys: fetching goes on while lanes work, so a slow record (a broker call) holds up only its
        own key; at most max_in_flight records are outstanding. Each partition commits the run of handled records
        from its oldest outstanding one, so a crash redelivers everything not yet handled (DESIGN.md invariant 3)."""
        hot_until = 0.0
        committing: asyncio.Task[None] | None = None  # one commit at a time, overlapping the next fetch
        try:
            while not self._stopping.is_set():
                lanes.raise_failure()
                if committing is not None and committing.done():
                    committing.result()  # a failed commit stops the loop, as in sequential mode
                    committing = None
                await lanes.wait_for_room()
                timeout_ms, hot_until = await self._fetch_timeout_ms(hot_until, busy=lanes.in_flight > 0)
                if self._stopping.is_set():
                    break
                batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=lanes.room())
                lanes.add(batch)
                if committing is None and (commits := lanes.committable()):
                    committing = asyncio.create_task(self._consumer.commit(commits))
        finally:
            await lanes.drain()  # each lane finishes its current record; the rest stay uncommitted
            if committing is not None:
                await asyncio.gather(committing, return_exceptions=True)
            commits = lanes.committable()
            if commits:
                with contextlib.suppress(Exception):  # a failed last commit only means redelivery
                    await self._consumer.commit(commits)
        lanes.raise_failure()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await self.run()
        finally:
            await self.close()

    def _should_stop(self) -> bool:
        return self._stopping.is_set()

    async def stop(self) -> None:
        """Finish the in-flight message, commit it, and return once the loop has ended."""
        self._stopping.set()
        await self._stopped.wait()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self.doorbell is not None:
            await self.doorbell.aclose()
        await self._consumer.stop()
        if self._owns_publisher:
            await self.publisher.stop()

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        physical = record.topic
        topic = lookup(self.names.logical(physical))
        headers = {k: v for k, v in (record.headers or ())}
        key = record.key.decode(errors="replace") if record.key is not None else None
        try:
            value = _decode(topic, record.value)
        except _BadRecord as bad:
            await self._dead_letter(record, topic, headers, bad.reason_code, bad.reason)
            return
        message = ConsumedMessage(
            topic.name,
            record.partition,
            record.offset,
            key,
            value,
            headers,
            record.timestamp,
        )
        message_id = message.envelope.message_id
        if await self.idempotency.seen(message_id):
            self.duplicates_skipped += 1
            return
        parent = propagate.extract({k: v.decode(errors="replace") for k, v in headers.items()})
        token = otel_context.attach(parent)
        try:
            with tracer.start_as_current_span(f"consume {topic.name}", kind=SpanKind.CONSUMER) as span:
                span.set_attribute("messaging.system", "kafka")
                span.set_attribute("messaging.destination.name", physical)
                span.set_attribute("messaging.consumer.group.name", self.group_id)
                span.set_attribute("messaging.message.id", message_id)
                try:
                    await self._call_with_retries(message)
                except PermanentError as error:
                    span.set_status(Status(StatusCode.ERROR, str(error)))
                    await self._dead_letter(record, topic, headers, error.reason_code, str(error))
                    return
                except Exception as error:  # retries exhausted: dead-letter, never lose it, carry on
                    span.record_exception(error)
                    span.set_status(Status(StatusCode.ERROR, str(error)))
                    await self._dead_letter(
                        record,
                        topic,
                        headers,
                        "handler_error",
                        f"{type(error).__name__}: {error} (after {self.max_attempts} attempts)",
                    )
                    return
        finally:
            otel_context.detach(token)
        await self.idempotency.mark(message_id)
        self.handled += 1

    async def _call_with_retries(self, message: ConsumedMessage) -> None:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.retry_initial_s, max=2.0),
            retry=retry_if_not_exception_type(PermanentError),
            reraise=True,
        ):
            with attempt:
                await self.handler(message)

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        topic: Topic,
        headers: dict[str, bytes],
        reason_code: str,
        reason: str,
    ) -> None:
        dead_letter = common_pb2.DeadLetter(
            envelope=new_envelope(self.group_id),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            key=record.key or b"",
            value=record.value or b"",
            headers=headers,
            reason_code=reason_code,
            reason=reason,
            consumer_group=self.group_id,
        )
        await self.publisher.publish_dead_letter(dead_letter, topic.name)
        self.dead_lettered += 1
        log.warning(
            "message dead-lettered",
            topic=topic.name,
            partition=dead_letter.source_partition,
            offset=dead_letter.source_offset,
            reason_code=reason_code,
            reason=reason[:500],
        )


Record: TypeAlias = ConsumerRecord[bytes, bytes]


class _Lanes:
    """A consumer's key lanes (Consumer(concurrent_keys=True)): each record goes to the lane of its partition and key
    as it is fetched; a lane handles its records one by one, in offset order, while other lanes and the next fetch go
    on. A partition's commit point advances over the run of handled records from its oldest outstanding one."""

    def __init__(
        self, handle: Callable[[Record], Awaitable[None]], should_stop: Callable[[], bool], max_in_flight: int
    ) -> None:
        self._handle = handle
        self._should_stop = should_stop
        self.max_in_flight = max_in_flight
        self._queues: dict[tuple[TopicPartition, bytes | None], collections.deque[Record]] = {}
        self._tasks: dict[tuple[TopicPartition, bytes | None], asyncio.Task[None]] = {}
        self._outstanding: dict[TopicPartition, collections.deque[int]] = {}  # offsets, in fetch order
        self._done: dict[TopicPartition, set[int]] = {}
        self.in_flight = 0
        self._progress = asyncio.Event()
        self._failure: BaseException | None = None

    def room(self) -> int:
        return max(1, self.max_in_flight - self.in_flight)

    async def wait_for_room(self) -> None:
        while self.in_flight >= self.max_in_flight and self._failure is None:
            self._progress.clear()
            await self._progress.wait()

    def add(self, batch: dict[TopicPartition, list[Record]]) -> None:
        for partition, records in batch.items():
            for record in records:
                lane = (partition, record.key)
                self._queues.setdefault(lane, collections.deque()).append(record)
                self._outstanding.setdefault(partition, collections.deque()).append(record.offset)
                self.in_flight += 1
                if lane not in self._tasks:
                    self._tasks[lane] = asyncio.create_task(self._run(lane))

    async def _run(self, lane: tuple[TopicPartition, bytes | None]) -> None:
        queue = self._queues[lane]
        try:
            while queue and not self._should_stop() and self._failure is None:
                record = queue[0]
                await self._handle(record)
                queue.popleft()
                self._done.setdefault(lane[0], set()).add(record.offset)
                self.in_flight -= 1
                self._progress.set()
        except BaseException as error:  # the consumer's loop raises it: nothing after it in this lane is committed
            self._failure = self._failure or error
            self._progress.set()
        finally:
            del self._tasks[lane]
            if not queue:
                del self._queues[lane]

    def committable(self, partitions: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """The commit point of each partition (of these partitions only, if given) that has moved on."""
        commits: dict[TopicPartition, int] = {}
        for partition, outstanding in self._outstanding.items():
            if partitions is not None and partition not in partitions:
                continue
            done = self._done.get(partition, set())
            while outstanding and outstanding[0] in done:
                offset = outstanding.popleft()
                done.discard(offset)
                commits[partition] = offset + 1
        return commits

    async def settle(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Wait until the lanes of these partitions are done, then forget them; returns their commit points."""
        while busy := [task for lane, task in self._tasks.items() if lane[0] in partitions]:
            await asyncio.gather(*busy, return_exceptions=True)
        commits = self.committable(partitions)
        for partition in partitions:
            left = self._outstanding.pop(partition, collections.deque())
            done = self._done.pop(partition, set())
            # unhandled (stopping): the next owner is given them again
            self.in_flight -= sum(1 for offset in left if offset not in done)
        for lane in [lane for lane in self._queues if lane[0] in partitions]:
            del self._queues[lane]
        self._progress.set()
        return commits

    async def drain(self) -> None:
        """Wait for every lane to stop (after its current record when stopping)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


class _SettleOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, lanes: _Lanes, consumer: AIOKafkaConsumer) -> None:
        self.lanes = lanes
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        commits = await self.lanes.settle(set(revoked))
        if commits:
            try:
                await self.consumer.commit(commits)
            except Exception as error:  # only means redelivery to the next owner, and idempotency absorbs it
                log.warning("commit before a rebalance failed", error=str(error))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass


class _BadRecord(Exception):
    def __init__(self, reason_code: str, reason: str) -> None:
        super().__init__(reason)
        self.reason_code = reason_code
        self.reason = reason


def _decode(topic: Topic, raw: bytes | None) -> Message:
    if raw is None:
        raise _BadRecord("empty_value", "record has no value (tombstone) on a topic that carries messages")
    try:
        value = topic.message_type.FromString(raw)
    except (DecodeError, ValueError) as error:
        raise _BadRecord("decode_error", f"not a {topic.type_name}: {error}") from error
    if not envelope_of(value).message_id:
        raise _BadRecord("invalid_envelope", f"{topic.type_name} without envelope.message_id")
    return value


def decode_record(topic_name: str, raw: bytes) -> Message:
    """Decode one record of a registered topic (used by `tradectl tail`)."""
    return lookup(topic_name).message_type.FromString(raw)


async def ensure_topics(
    bootstrap_servers: str, names: Iterable[str], *, namespace: str = "", shadow: bool = False
) -> list[str]:
    """Create registry topics that do not exist yet (partitions, retention). Returns the names it created."""
    topic_names = TopicNames(namespace, shadow)
    wanted = {}
    for name in names:
        topic = lookup(name)
        wanted[topic_names.physical(name)] = topic
        if shadow:
            wanted[topic_names.physical_input(name)] = topic
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="ensure-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=physical,
                num_partitions=topic.partitions,
                replication_factor=1,
                topic_configs={"retention.ms": str(topic.retention_ms)},
            )
            for physical, topic in wanted.items()
            if physical not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()


async def end_offsets(bootstrap_servers: str, physical_topics: Iterable[str]) -> dict[str, dict[int, int]]:
    """Current end offset of every partition of the given topics (topics that do not exist are left out)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        result: dict[str, dict[int, int]] = {}
        partitions = []
        for name in physical_topics:
            ids = consumer.partitions_for_topic(name)
            if ids is None:
                await consumer._client.force_metadata_update()
                ids = consumer.partitions_for_topic(name)
            partitions += [TopicPartition(name, p) for p in sorted(ids or ())]
        if partitions:
            offsets = await consumer.end_offsets(partitions)
            for tp, offset in offsets.items():
                result.setdefault(tp.topic, {})[tp.partition] = offset
        return result
    finally:
        await consumer.stop()


async def replay(
    bootstrap_servers: str, topic: str, *, namespace: str = "", timeout_s: float = 30.0
) -> AsyncIterator[ConsumedMessage]:
    """Every message of a topic from the beginning up to its end at the time of the call, then stop.

    This is how a service rebuilds its state from its event log (DESIGN.md invariant 4). No consumer group:
    nothing is committed. Records that do not decode are skipped here (the live consumer dead-letters them).
    """
    registered = lookup(topic)
    physical = namespace + registered.name
    ends = (await end_offsets(bootstrap_servers, [physical])).get(physical, {})
    if not any(ends.values()):
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(physical, p) for p in ends]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp: ends[tp.partition] for tp in partitions if ends[tp.partition] > 0}
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"replay of {physical} did not reach the end offsets {ends} in {timeout_s} s")
            batch = await consumer.getmany(*remaining.keys(), timeout_ms=200)
            for tp, records in batch.items():
                if tp not in remaining:
                    continue
                # Every record of what was fetched, even past the end offset: the embedded broker reports the end
                # of a partition as the last record batch's base offset + 1, so the last records of a batch of
                # several (a producer that pipelines) lie past it. They come in the same fetch as the batch start.
                for record in records:
                    try:
                        value = _decode(registered, record.value)
                    except _BadRecord:
                        continue
                    key = record.key.decode(errors="replace") if record.key is not None else None
                    yield ConsumedMessage(
                        registered.name,
                        record.partition,
                        record.offset,
                        key,
                        value,
                        dict(record.headers or ()),
                        record.timestamp,
                    )
                if records and records[-1].offset + 1 >= remaining[tp]:
                    del remaining[tp]
    finally:
        await consumer.stop()
