"""Publishing registry-typed messages (Publisher): idempotent producers, and Kafka transactions when asked for.

- A message of the wrong type for a topic raises. The envelope's fields and the W3C trace context travel in Kafka
  headers (trading_platform.messaging.names); `publish` waits for the broker's ack.
- Every producer is idempotent with acks="all": a retried send is written once, in order per partition.
- With a `transactional_id`, `async with publisher.transaction():` begins a transaction, commits it when the block
  ends and aborts it when the block raises; `send_offsets_to_transaction` puts a consumer's offsets into it, so
  outputs and consumed offsets are committed together (Consumer(transactional=True) does this per batch). A producer
  holds one transaction at a time: `transaction()` serialises its callers on an asyncio.Lock, and a publish on a
  transactional publisher outside a transaction runs in a short transaction of its own (a gRPC handler publishing a
  manual order between two batches of the consume loop). One transactional id per running instance: a new producer
  with the same id fences the old one.
- An idempotent producer that loses its sequence with the broker (OutOfOrderSequenceNumber or UnknownProducerId,
  seen after a broker restart) can never send again: the publisher replaces it with a new producer (a new producer
  id) and the failed publish raises TransientError, so the consumer that asked tries again on the new one. A
  transactional producer is not replaced: its transaction aborts and its owner fails closed (order-management).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiokafka.producer.sender as aiokafka_sender
import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import OutOfOrderSequenceNumber, UnknownProducerId
from google.protobuf.message import Message
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from trading.common.v1 import common_pb2

from trading_platform.envelope import envelope_of
from trading_platform.messaging.connection import (
    CLIENT_TIMEOUTS,
    START_TIMEOUT_S,
    KafkaConnection,
    connection_of,
    start_client,
)
from trading_platform.messaging.failures import TransientError
from trading_platform.messaging.names import TopicNames, headers_for
from trading_platform.sampling import unsampled
from trading_platform.topics import lookup

tracer = trace.get_tracer("trading_platform.messaging")
log = structlog.get_logger("trading_platform.messaging")

# The publisher whose transaction the current task (and the tasks it created inside the transaction) is in.
_in_transaction: contextvars.ContextVar[Publisher | None] = contextvars.ContextVar("in_transaction", default=None)


# The broker no longer knows this idempotent producer's sequence: nothing it sends can be written again.
SEQUENCE_LOST = (OutOfOrderSequenceNumber, UnknownProducerId)


class MessageTypeError(TypeError):
    """A message of the wrong type for a topic."""


TRANSACTION_RETRY_BACKOFF_MS = 10
# aiokafka waits a fixed 20 ms before it asks again when a transaction's first AddPartitionsToTxn is told
# CONCURRENT_TRANSACTIONS (KAFKA-5477: the last commit's markers are still being written, which takes a millisecond
# or two on this broker). Measured, 60 back-to-back one-record transactions: p50 34 ms with 20 ms, 14 ms with 2 ms.
aiokafka_sender.BACKOFF_OVERRIDE = 0.002


class Publisher:
    """Publishes registry-typed messages; `async with Publisher(...) as publisher:` or start()/stop()."""

    def __init__(
        self,
        connection: KafkaConnection | str,
        producer_name: str,
        *,
        namespace: str = "",
        shadow: bool = False,
        linger_ms: int = 0,
        max_batch_size: int = 16384,
        transactional_id: str | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.connection = connection_of(connection)
        self.producer_name = producer_name
        self.names = TopicNames(namespace, shadow)
        self.transactional_id = transactional_id
        self.start_timeout_s = start_timeout_s
        timeouts = dict(CLIENT_TIMEOUTS)
        if transactional_id is not None:
            # A transaction begun right after the last one's commit is told CONCURRENT_TRANSACTIONS until the broker
            # has written the commit markers (a millisecond or two); the client waits retry_backoff_ms before asking
            # again, so a short one keeps back-to-back transactions (an order path under load) from waiting 200 ms.
            timeouts["retry_backoff_ms"] = TRANSACTION_RETRY_BACKOFF_MS
        self._options: dict[str, Any] = {
            **self.connection.client_options(),
            **timeouts,
            "client_id": producer_name,
            "acks": "all",
            "enable_idempotence": True,
            "transactional_id": transactional_id,
            "linger_ms": linger_ms,
            # The most bytes in one partition's batch. The idempotent producer has one request in flight per
            # partition, and a send that finds its batch full waits for it to drain (each waiter a wake-up per
            # drain): a publisher with hundreds of sends outstanding at once needs room for all of them.
            "max_batch_size": max_batch_size,
        }
        self._producer = AIOKafkaProducer(**self._options)
        self._transaction_lock = asyncio.Lock()
        self._renew_lock = asyncio.Lock()
        self.renewals = 0  # producers replaced after losing their sequence
        self._renewing: set[asyncio.Future[None]] = set()
        self._started = False

    @property
    def transactional(self) -> bool:
        return self.transactional_id is not None

    async def start(self) -> None:
        if not self._started:
            await start_client(self._producer.start, self.connection, self.start_timeout_s)
            self._started = True

    async def stop(self) -> None:
        if self._started:
            with contextlib.suppress(Exception):  # a broker that went away: stop all the same
                await self._producer.flush()
            await self._producer.stop()
            self._started = False

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def in_transaction(self) -> bool:
        """Whether the current task is inside this publisher's transaction."""
        return _in_transaction.get() is self

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Publisher]:
        """A Kafka transaction: committed when the block ends, aborted when it raises (the error goes on). Callers
        take turns (one transaction at a time per producer); inside one, a nested `transaction()` joins it."""
        if not self.transactional:
            raise RuntimeError(f"publisher {self.producer_name!r} has no transactional_id")
        if self.in_transaction():
            yield self
            return
        async with self._transaction_lock:
            await self._producer.begin_transaction()
            token = _in_transaction.set(self)
            try:
                try:
                    yield self
                except BaseException:
                    await self._abort()
                    raise
                try:
                    await self._producer.commit_transaction()
                except BaseException:
                    await self._abort()
                    raise
            finally:
                _in_transaction.reset(token)

    async def _abort(self) -> None:
        try:
            await self._producer.abort_transaction()
        except Exception as error:  # the original error is what the caller needs to see
            log.warning("aborting a transaction failed", producer=self.producer_name, error=str(error))

    async def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_id: str) -> None:
        """Commit these consumer-group offsets (the next offset to read, per partition) with the transaction."""
        if not self.in_transaction():
            raise RuntimeError("send_offsets_to_transaction needs an open transaction: `async with transaction()`")
        if offsets:
            await self._producer.send_offsets_to_transaction(dict(offsets), group_id)

    async def publish(self, topic: str, message: Message, key: str) -> tuple[int, int]:
        """Publish and wait for the ack; returns (partition, offset). On a transactional publisher, outside a
        transaction, the record is committed in a transaction of its own before this returns."""
        producer = self._producer
        try:
            metadata = await (await self.send(topic, message, key, span_until_ack=True))
        except SEQUENCE_LOST as error:
            await self._renew(producer, error)
            raise TransientError(f"publishing to {topic}: {self._lost(error)}") from error
        return metadata.partition, metadata.offset

    def _lost(self, error: BaseException) -> str:
        lost = f"producer {self.producer_name!r} lost its sequence ({type(error).__name__})"
        if self.transactional:  # not replaced here: its owner starts a new one (order-management does, on abort)
            return f"{lost}; its owner must renew it"
        return f"{lost}; replaced, try again"

    def _renew_on_loss(self, producer: AIOKafkaProducer, delivery: asyncio.Future[Any]) -> None:
        """A send's ack failed: replace the producer it was sent on if the failure is a lost sequence."""
        if delivery.cancelled() or self.transactional:
            return
        error = delivery.exception()
        if isinstance(error, SEQUENCE_LOST):
            task = asyncio.ensure_future(self._renew(producer, error))
            self._renewing.add(task)
            task.add_done_callback(self._renewing.discard)

    async def _renew(self, broken: AIOKafkaProducer, error: BaseException) -> None:
        """Replace `broken` (once, however many of its sends failed) by a new idempotent producer."""
        if self.transactional:
            return
        async with self._renew_lock:
            if self._producer is not broken or not self._started:
                return
            log.warning("replacing a producer that lost its sequence", producer=self.producer_name, error=repr(error))
            replacement = AIOKafkaProducer(**self._options)
            await start_client(replacement.start, self.connection, self.start_timeout_s)
            self._producer = replacement
            self.renewals += 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(broken.stop(), 5)

    async def send(
        self, topic: str, message: Message, key: str, *, span_until_ack: bool = False
    ) -> asyncio.Future[Any]:
        """Hand a message to the producer and return its ack as a future, without waiting for it (it waits only
        when the producer's buffer is full). Records of one key keep their order. For a source whose messages do
        not depend on each other's acks (market data): the caller must watch the future, since a failure is only
        reported there. On a transactional publisher outside a transaction, the record is sent and committed in a
        transaction of its own, so the future is done when this returns."""
        registered = lookup(topic)
        if not isinstance(message, registered.message_type):
            raise MessageTypeError(f"{topic} carries {registered.type_name}, not {message.DESCRIPTOR.full_name}")
        if not envelope_of(message).message_id:
            raise ValueError(f"{message.DESCRIPTOR.full_name} has no envelope.message_id: use new_envelope()")
        if self.transactional and not self.in_transaction():
            async with self.transaction():
                delivery = await self._send_traced(registered.name, registered.type_name, message, key, span_until_ack)
                await delivery
            return delivery
        return await self._send_traced(registered.name, registered.type_name, message, key, span_until_ack)

    async def _send_traced(
        self, topic: str, type_name: str, message: Message, key: str, span_until_ack: bool
    ) -> asyncio.Future[Any]:
        physical = self.names.physical(topic)
        if unsampled():  # an unrecorded trace: no span of its own, its context goes on in the headers as it came
            return await self._send_record(physical, type_name, message, key)
        span = tracer.start_span(
            f"publish {topic}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": physical,
                "messaging.message.id": envelope_of(message).message_id,
            },
        )
        # The consumer's span is this span's child (trace context in the headers); the span ends at the ack when
        # the caller waits for it, else when the record is handed to the producer.
        with trace.use_span(span, end_on_exit=not span_until_ack):
            try:
                delivery = await self._send_record(physical, type_name, message, key)
            except BaseException:
                span.end()
                raise
        if span_until_ack:
            delivery.add_done_callback(lambda _: span.end())
        return delivery

    async def _send_record(self, physical: str, type_name: str, message: Message, key: str) -> asyncio.Future[Any]:
        producer = self._producer
        delivery: asyncio.Future[Any] = await producer.send(
            physical, message.SerializeToString(), key=key.encode(), headers=headers_for(message, type_name)
        )
        delivery.add_done_callback(lambda done: self._renew_on_loss(producer, done))
        return delivery

    async def publish_dead_letter(self, dead_letter: common_pb2.DeadLetter, source_topic: str) -> None:
        """Dead letters keep the source's key; they go to the live `<topic>.dlq` even from a shadow colour. Inside
        a transaction they are part of it; on a transactional publisher outside one, in a transaction of their own."""
        if self.transactional and not self.in_transaction():
            async with self.transaction():
                await self._send_dead_letter(dead_letter, source_topic)
            return
        await self._send_dead_letter(dead_letter, source_topic)

    async def _send_dead_letter(self, dead_letter: common_pb2.DeadLetter, source_topic: str) -> None:
        producer = self._producer
        try:
            await producer.send_and_wait(
                self.names.dead_letters(source_topic),
                dead_letter.SerializeToString(),
                key=dead_letter.key or None,
                headers=headers_for(dead_letter, common_pb2.DeadLetter.DESCRIPTOR.full_name),
            )
        except SEQUENCE_LOST as error:
            await self._renew(producer, error)
            raise TransientError(f"dead-lettering from {source_topic}: {self._lost(error)}") from error
