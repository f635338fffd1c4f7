"""Consuming registry topics in a consumer group (Consumer): commit after the handler, dead letters, retries.

- Committing loop (the default): an offset is committed only after the handler returned (invariant 3 of
  docs/architecture.md), once per fetched batch. A message whose envelope.message_id was already handled is skipped
  (the idempotency store is marked only after success). Failures follow trading_platform.messaging.failures: a record
  that does not decode, or whose handler fails permanently (PermanentError, a validation error), goes to
  `<topic>.dlq` as a DeadLetter at once and the consumer carries on; a transient error (a dependency down, a timeout)
  is retried with capped exponential backoff for `transient_retry_s` (10 minutes by default) while nothing after it is
  committed, and `health()` names the message and the error; any other error is retried `max_attempts` times, then
  dead-lettered.
- Transactional loop (`transactional=True`, with a transactional `publisher`): each fetched batch is one Kafka
  transaction. Its records are handled (one by one, or in key lanes), what the handlers publish and the batch's
  dead letters are sent inside the transaction, the batch's next offsets are added to it, and it commits: outputs
  and consumed offsets become visible together, or not at all. A handler that still fails after its retries, or a
  failed commit, aborts the transaction and raises out of run(): that batch's in-memory effects are not in the log,
  so the caller restarts (rebuilds its state) and the batch is delivered again. Handled ids are marked in the
  idempotency store only after the commit. Here only permanent errors are dead-lettered; every other error is tried
  `max_attempts` times and then aborts the batch (never dead-lettered: redelivery is the retry).
- Consumers read with isolation_level="read_committed": records of aborted transactions are never delivered.
- By default a consumer handles one record at a time; with `concurrent_keys=True` in key lanes
  (trading_platform.messaging.lanes).
- `stop()` drains: the in-flight message (in the transactional loop, the in-flight batch) finishes and is committed
  before the loop ends; it wakes a fetch that is waiting for data.
- A partition taken away in a rebalance is handed over clean: the revocation waits for the batch in flight to be
  committed (lanes: for its lanes to settle), so the next owner starts where this one stopped.
- Supervision: a run() that raises leaves `failure` set; `health()` reports it until close(). The service runner
  turns health NOT_SERVING and exits non-zero when a consumer stays dead (trading_platform.service).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from trading_platform.messaging.connection import (
    CLIENT_TIMEOUTS,
    START_TIMEOUT_S,
    KafkaConnection,
    connection_of,
    start_client,
)
from trading_platform.messaging.dead_letters import dead_letter_of
from trading_platform.messaging.failures import Interrupted, RetryWaits, kind_of, reason_code_of
from trading_platform.messaging.idempotency import IdempotencyStore, MemoryIdempotencyStore
from trading_platform.messaging.lanes import KeyLanes, SettleOnRevoke
from trading_platform.messaging.names import TopicNames
from trading_platform.messaging.producer import Publisher
from trading_platform.messaging.records import BadRecord, Handler, Record, consumed, decode
from trading_platform.sampling import unsampled
from trading_platform.topics import Topic, lookup

tracer = trace.get_tracer("trading_platform.messaging")
log = structlog.get_logger("trading_platform.messaging")

# Group timing. The broker waits up to rebalance_timeout_ms for members to (re)join, which is what a consumer's
# start-up costs; a crashed member's partitions move after session_timeout_ms. A fetch waits at most
# fetch_max_wait_ms on the broker, which answers it as soon as data arrives. Tune per deployment via settings.
DEFAULT_GROUP_OPTIONS = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 500,
    "rebalance_timeout_ms": 2000,
    "fetch_max_wait_ms": 500,
}
POLL_TIMEOUT_MS = 1000  # a getmany's own wait; stop() does not wait for it
SEQUENTIAL_BATCH = 100  # most records per fetch when handling one at a time
DEFAULT_REMEMBERED_IDS = 10_000  # handled message ids a consumer without a store of its own keeps
JOIN_WAITS = 5
TRANSIENT_RETRY_S = 600.0  # how long a transient error is retried before the message is dead-lettered
TRANSIENT_BACKOFF_MAX_S = 30.0  # the cap of the exponential backoff between transient retries
UNKNOWN_BACKOFF_MAX_S = 2.0


@dataclass
class Stall:
    """A message whose handler keeps failing with a transient error, waiting for its next try."""

    topic: str
    partition: int
    offset: int
    error: str
    since: float  # time.monotonic() of the first failure
    attempts: int

    def describe(self) -> str:
        waited = time.monotonic() - self.since
        return (
            f"retrying {self.topic}[{self.partition}]@{self.offset} for {waited:.0f} s "
            f"({self.attempts} attempts, nothing after it committed): {self.error}"
        )


class ConsumerJoinError(RuntimeError):
    """A consumer could not join its group: it never got partitions."""


class Consumer:
    """Consumes registry topics in a consumer group; commits after the handler, or per batch in a transaction."""

    def __init__(
        self,
        connection: KafkaConnection | str,
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
        transactional: bool = False,
        isolation_level: str = "read_committed",
        start_timeout_s: float = START_TIMEOUT_S,
        start_at_ms: Callable[[], int] | None = None,
        transient_retry_s: float | None = TRANSIENT_RETRY_S,
        transient_backoff_max_s: float = TRANSIENT_BACKOFF_MAX_S,
    ) -> None:
        # start_at_ms: where a partition without a committed offset starts, as a time (UNIX ms, asked at start):
        # the first record at or after it, or the end. For a reader that needs only a recent window of a topic.
        if transactional and (publisher is None or not publisher.transactional):
            raise ValueError("Consumer(transactional=True) needs a publisher with a transactional_id")
        self.connection = connection_of(connection)
        self.transactional = transactional
        # In the transactional loop a batch is always finished, so lanes never stop half-way through one.
        should_stop = (lambda: False) if transactional else self._should_stop
        self.lanes = KeyLanes(self._handle, should_stop, max_in_flight) if concurrent_keys else None
        self.names = TopicNames(namespace, shadow)
        self.topics = [lookup(t).name for t in topics]
        self.group_id = group_id + ("-shadow" if shadow else "")
        self.handler = handler
        # Without a store of its own, a consumer remembers the last DEFAULT_REMEMBERED_IDS ids it handled: what a
        # crash or a rebalance redelivers (the records after the last commit), in bounded memory.
        self.idempotency = (
            idempotency if idempotency is not None else MemoryIdempotencyStore(max_ids=DEFAULT_REMEMBERED_IDS)
        )
        self.max_attempts = max_attempts
        self.retry_initial_s = retry_initial_s
        self.start_timeout_s = start_timeout_s
        self.start_at_ms = start_at_ms
        # transient_retry_s=None: a transient error is retried until it goes away (or the consumer stops).
        self.transient_retry_s = transient_retry_s
        self.transient_backoff_max_s = transient_backoff_max_s
        self._owns_publisher = publisher is None
        self.publisher = publisher or Publisher(self.connection, f"{group_id}-dlq", namespace=namespace)
        options = {**DEFAULT_GROUP_OPTIONS, **(group_options or {})}
        # A join normally completes within a rebalance, or a session timeout when a member died without leaving.
        self.join_timeout_s = (options["session_timeout_ms"] + options["rebalance_timeout_ms"]) / 1000 + 5
        # A message retried for a transient error holds up the fetch loop (sequential mode) for as long as the retry
        # bound: the group must not take the partitions away meanwhile.
        retry_bound_s = transient_retry_s if transient_retry_s is not None else 24 * 3600.0
        options.setdefault("max_poll_interval_ms", max(300_000, int((retry_bound_s + 60) * 1000)))
        self._consumer = AIOKafkaConsumer(
            **self.connection.client_options(),
            **CLIENT_TIMEOUTS,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=auto_offset_reset,
            isolation_level=isolation_level,
            client_id=self.group_id,
            **options,
        )
        self._batch_lock = asyncio.Lock()  # held while a batch is handled and committed
        self._pending_marks: list[str] | None = [] if transactional else None
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._waits = RetryWaits(self._stopping)
        self.handled = 0
        self.dead_lettered = 0
        self.duplicates_skipped = 0
        self.stalls: dict[tuple[str, int, int], Stall] = {}
        self.failure: BaseException | None = None  # why run() ended, if it raised
        self.closed = False

    async def start(self) -> None:
        await self.publisher.start()
        await self._join()

    async def _join(self) -> None:
        """Join the group: start() returns once partitions are assigned. A cluster that cannot be reached fails the
        start with BrokerUnavailableError after start_timeout_s. A join that goes unanswered (a group coordinator
        that never becomes available, a group stuck in a rebalance) is logged every join_timeout_s, and after
        JOIN_WAITS of them the start fails naming the group, rather than hanging unseen."""
        listener: ConsumerRebalanceListener
        if self.lanes is not None and not self.transactional:
            listener = SettleOnRevoke(self.lanes, self._consumer, self._waits)
        else:
            listener = _FinishBatchOnRevoke(self._batch_lock, self._waits)
        self._consumer.subscribe([self.names.physical_input(t) for t in self.topics], listener=listener)
        joining = asyncio.ensure_future(start_client(self._consumer.start, self.connection, self.start_timeout_s))
        for wait in range(1, JOIN_WAITS + 1):
            done, _ = await asyncio.wait({joining}, timeout=self.join_timeout_s)
            if done:
                joining.result()
                # Where each partition starts is settled now, not at the first fetch: a consumer that starts from
                # the end ("latest") then reads everything published after start() returned.
                assigned = self._consumer.assignment()
                if self.start_at_ms is not None and assigned:
                    await self._seek_to_time(assigned, self.start_at_ms())
                for partition in assigned:
                    await self._consumer.position(partition)
                return
            log.warning(
                "consumer group join unanswered", group=self.group_id, waited_s=round(wait * self.join_timeout_s)
            )
        joining.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._consumer.stop(), 5)
        raise ConsumerJoinError(
            f"consumer group {self.group_id!r} got no partitions in {JOIN_WAITS * self.join_timeout_s:.0f} s: is the "
            f"Kafka cluster at {self.connection.bootstrap_servers} healthy (its group coordinator available)?"
        )

    async def _seek_to_time(self, partitions: set[TopicPartition], at_ms: int) -> None:
        fresh = [tp for tp in partitions if await self._consumer.committed(tp) is None]
        if not fresh:
            return
        # Paused while asked: the broker answers a connection's requests in turn, so a lookup sent behind the
        # fetches of these partitions (each held up to fetch_max_wait_ms on an empty log) waits for them.
        self._consumer.pause(*fresh)
        try:
            found = await self._consumer.offsets_for_times({tp: at_ms for tp in fresh})
            for tp in fresh:
                offset = found.get(tp)
                if offset is None:
                    await self._consumer.seek_to_end(tp)
                else:
                    self._consumer.seek(tp, offset.offset)
        finally:
            self._consumer.resume(*fresh)

    async def _fetch(self, max_records: int) -> dict[TopicPartition, list[Record]]:
        """The next batch: the broker answers as soon as data arrives. stop() cuts the wait short (nothing fetched
        is lost: what is not handled is not committed)."""
        fetching = asyncio.ensure_future(self._consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=max_records))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({fetching, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not fetching.done():
                fetching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fetching
        return fetching.result() if not fetching.cancelled() else {}

    def _owned(self, batch: dict[TopicPartition, list[Record]]) -> dict[TopicPartition, list[Record]]:
        """Only partitions still assigned: a rebalance between the fetch and the batch took the others away."""
        assigned = self._consumer.assignment()
        return {tp: records for tp, records in batch.items() if records and tp in assigned}

    async def run(self) -> None:
        """Consume until stop(). Call start() first (or use run_forever())."""
        try:
            if self.transactional:
                await self._run_transactional()
            elif self.lanes is not None:
                await self._run_lanes(self.lanes)
            else:
                await self._run_sequential()
        except Exception as error:
            self.failure = error
            log.error(
                "consumer loop died",
                group=self.group_id,
                topics=self.topics,
                error=f"{type(error).__name__}: {error}",
                exc_info=True,
            )
            raise
        finally:
            self._stopped.set()

    def health(self) -> str | None:
        """None while the consumer is fine; else why not: its loop died (until close()), or it is retrying a
        message that fails with a transient error."""
        if self.failure is not None and not self.closed:
            return f"consumer {self.group_id} died: {type(self.failure).__name__}: {self.failure}"
        if self.stalls:
            return f"consumer {self.group_id} " + "; ".join(stall.describe() for stall in self.stalls.values())
        return None

    async def _run_sequential(self) -> None:
        while not self._stopping.is_set():
            batch = await self._fetch(SEQUENTIAL_BATCH)
            async with self._batch_lock:
                handled: dict[TopicPartition, int] = {}
                try:
                    await self._handle_in_order(self._owned(batch), handled)
                finally:
                    # One commit per fetched batch, of handled records only: a crash before it redelivers them,
                    # and the idempotency store makes the second handling a no-op (docs/architecture.md invariant 3).
                    if handled:
                        await self._consumer.commit(handled)

    async def _handle_in_order(
        self, batch: dict[TopicPartition, list[Record]], handled: dict[TopicPartition, int]
    ) -> None:
        for partition, records in batch.items():
            for record in records:
                if self._stopping.is_set():
                    return  # drain: unhandled records stay uncommitted and are redelivered
                try:
                    await self._handle(record)
                except Interrupted:
                    if not self._stopping.is_set():  # a revocation cut a retry short: fetch the rest again
                        assigned = self._consumer.assignment()
                        for tp, rest in batch.items():
                            if tp in assigned:
                                self._consumer.seek(tp, handled.get(tp, rest[0].offset))
                    return
                handled[partition] = record.offset + 1

    async def _run_lanes(self, lanes: KeyLanes) -> None:
        """concurrent_keys: fetching goes on while lanes work, so a slow record (a broker call) holds up only its
        own key; at most max_in_flight records are outstanding. Each partition commits the run of handled records
        from its oldest outstanding one, so a crash redelivers everything not yet handled (invariant 3 of
        docs/architecture.md)."""
        committing: asyncio.Task[None] | None = None  # one commit at a time, overlapping the next fetch
        try:
            while not self._stopping.is_set():
                lanes.raise_failure()
                if committing is not None and committing.done():
                    committing.result()  # a failed commit stops the loop, as in sequential mode
                    committing = None
                await lanes.wait_for_room()
                if self._stopping.is_set():
                    break
                lanes.add(self._owned(await self._fetch(lanes.room())))
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

    async def _run_transactional(self) -> None:
        """One transaction per fetched batch: handle it all, send its offsets, commit; no consumer commit."""
        max_records = self.lanes.max_in_flight if self.lanes is not None else SEQUENTIAL_BATCH
        while not self._stopping.is_set():
            batch = await self._fetch(max_records)
            if not batch:
                continue
            async with self._batch_lock:
                batch = self._owned(batch)
                if not batch:
                    continue
                marks = self._pending_marks = []
                async with self.publisher.transaction():
                    offsets = await self._handle_batch(batch)
                    await self.publisher.send_offsets_to_transaction(offsets, self.group_id)
                for message_id in marks:  # only now: an aborted batch is handled again when redelivered
                    await self.idempotency.mark(message_id)

    async def _handle_batch(self, batch: dict[TopicPartition, list[Record]]) -> dict[TopicPartition, int]:
        if self.lanes is None:
            for records in batch.values():
                for record in records:
                    await self._handle(record)
        else:
            self.lanes.add(batch)
            await self.lanes.drain()
            self.lanes.raise_failure()
            self.lanes.committable()  # forget the batch's offsets: they are committed below
        return {partition: records[-1].offset + 1 for partition, records in batch.items()}

    async def run_forever(self) -> None:
        await self.start()
        try:
            await self.run()
        finally:
            await self.close()

    def _should_stop(self) -> bool:
        return self._stopping.is_set()

    async def stop(self) -> None:
        """Finish the in-flight message (or batch), commit it, and return once the loop has ended."""
        self._stopping.set()
        await self._stopped.wait()

    async def close(self) -> None:
        self.closed = True
        await self._consumer.stop()
        if self._owns_publisher:
            await self.publisher.stop()

    def _consume_span(self, topic: Topic, physical: str, message_id: str) -> contextlib.AbstractContextManager[Span]:
        """The span a record is handled in, a child of its producer's; none of its own in an unrecorded trace."""
        if unsampled():
            return contextlib.nullcontext(trace.get_current_span())
        return tracer.start_as_current_span(
            f"consume {topic.name}",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": physical,
                "messaging.consumer.group.name": self.group_id,
                "messaging.message.id": message_id,
            },
        )

    async def _handle(self, record: Record) -> None:
        physical = record.topic
        topic = lookup(self.names.logical(physical))
        headers = {k: v for k, v in (record.headers or ())}
        try:
            value = decode(topic, record.value)
        except BadRecord as bad:
            await self._dead_letter(record, topic, headers, bad.reason_code, bad.reason)
            return
        message = consumed(topic, record, value)
        message_id = message.envelope.message_id
        pending = self._pending_marks
        if await self.idempotency.seen(message_id) or (pending is not None and message_id in pending):
            self.duplicates_skipped += 1
            return
        parent = propagate.extract({k: v.decode(errors="replace") for k, v in headers.items()})
        token = otel_context.attach(parent)
        try:
            with self._consume_span(topic, physical, message_id) as span:
                started = time.monotonic()
                retrying: AsyncRetrying | None = None
                try:
                    try:
                        # The first attempt runs without the retry policy: building and entering it per message
                        # (tenacity inspects its callbacks each time) cost more than a bar's handler.
                        await self.handler(message)
                    except Interrupted:
                        raise
                    except Exception as first:
                        retrying = self._retrying(record, started)
                        replayed = False
                        async for attempt in retrying:
                            with attempt:
                                if not replayed:  # attempt 1 is the one above: its outcome, not a second call
                                    replayed = True
                                    raise first
                                await self.handler(message)
                except Interrupted:
                    raise
                except Exception as error:
                    attempts = retrying.statistics.get("attempt_number", 1) if retrying is not None else 1
                    span.record_exception(error)
                    span.set_status(Status(StatusCode.ERROR, str(error)))
                    kind = kind_of(error)
                    if kind == "permanent":
                        await self._dead_letter(
                            record, topic, headers, reason_code_of(error), str(error), error, attempts
                        )
                        return
                    if self.transactional:  # the batch aborts: its effects are not in the log
                        raise
                    # retries exhausted: dead-letter, never lose it, carry on
                    if kind == "transient":
                        stall = self.stalls.get((record.topic, record.partition, record.offset))
                        waited = time.monotonic() - stall.since if stall is not None else 0.0
                        code, detail = "transient_exhausted", f"still failing after {waited:.0f} s, {attempts} attempts"
                    else:
                        code, detail = "handler_error", f"after {attempts} attempts"
                    await self._dead_letter(
                        record, topic, headers, code, f"{type(error).__name__}: {error} ({detail})", error, attempts
                    )
                    return
                finally:
                    self.stalls.pop((record.topic, record.partition, record.offset), None)
        finally:
            otel_context.detach(token)
        if pending is not None:
            pending.append(message_id)
        else:
            await self.idempotency.mark(message_id)
        self.handled += 1

    def _retrying(self, record: Record, started: float) -> AsyncRetrying:
        """The retry policy of one message (trading_platform.messaging.failures), its first attempt begun at
        `started` (monotonic): permanent errors are not retried; transient ones (committing loops) for
        transient_retry_s with backoff capped at transient_backoff_max_s; the rest max_attempts times. A stop() cuts
        a wait short (Interrupted: the message stays uncommitted)."""
        key = (record.topic, record.partition, record.offset)

        def transient(state: RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome is not None else None
            return error is not None and not self.transactional and kind_of(error) == "transient"

        def stop(state: RetryCallState) -> bool:
            if transient(state):
                bound = self.transient_retry_s
                return bound is not None and time.monotonic() - started >= bound
            return state.attempt_number >= self.max_attempts

        def wait(state: RetryCallState) -> float:
            cap = self.transient_backoff_max_s if transient(state) else UNKNOWN_BACKOFF_MAX_S
            return float(min(cap, self.retry_initial_s * 2 ** min(state.attempt_number - 1, 30)))

        async def before_sleep(state: RetryCallState) -> None:
            if not transient(state):
                return
            error = state.outcome.exception() if state.outcome is not None else None
            described = f"{type(error).__name__}: {error}"[:300]
            attempt = state.attempt_number
            self.stalls[key] = Stall(record.topic, record.partition, record.offset, described, started, attempt)
            if attempt & (attempt - 1) == 0:  # 1, 2, 4, 8...: a line now and then, not one per retry
                log.warning(
                    "transient error: retrying, nothing after this message is committed meanwhile",
                    group=self.group_id,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    attempts=attempt,
                    error=described,
                )

        async def sleep(seconds: float) -> None:
            if self.transactional:  # a transactional batch is always finished: its waits are short
                await asyncio.sleep(seconds)
                return
            await self._waits.wait(TopicPartition(record.topic, record.partition), seconds)

        return AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(lambda error: kind_of(error) != "permanent"),
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )

    async def _dead_letter(
        self,
        record: Record,
        topic: Topic,
        headers: dict[str, bytes],
        reason_code: str,
        reason: str,
        error: BaseException | None = None,
        attempts: int = 0,
    ) -> None:
        dead_letter = dead_letter_of(
            record, self.group_id, headers, reason_code, reason, error=error, attempts=attempts
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


class _FinishBatchOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """A revocation waits for the batch in flight to be handled and committed, so the next owner of a partition
    starts after it (and a transactional batch never commits offsets of a partition that has moved on). A record of
    a revoked partition waiting out a transient error stops waiting: it is the next owner's."""

    def __init__(self, batch_lock: asyncio.Lock, waits: RetryWaits) -> None:
        self.batch_lock = batch_lock
        self.waits = waits

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.waits.begin_revoke(set(revoked))
        try:
            async with self.batch_lock:
                pass
        finally:
            self.waits.end_revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass
