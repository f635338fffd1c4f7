"""An in-memory Kafka with the semantics the services rely on, standing in for trading_platform.messaging.

Partitioned logs (a key always lands in the same partition, records of a partition keep their order), transactions
(records are in the log from the send, invisible to read_committed readers until the commit; an abort hides them; a
new producer with the same transactional id fences the old one and aborts its open transaction), consumer groups
whose committed offsets are durable, and replay. What the simulation decides, not the bus: when a consumer is handed
its next records (so delivery across partitions is reordered and delayed), when a rebalance redelivers from the
committed offsets (duplicates), when a lane consumer commits, and which non-transactional sends are lost.

`SimPublisher`, `SimConsumer`, `sim_replay` and `sim_ensure_topics` keep the signatures of Publisher, Consumer,
replay and ensure_topics, so the services' own code runs against them unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message
from trading_platform.envelope import envelope_of
from trading_platform.messaging import ConsumedMessage, MemoryIdempotencyStore, MessageTypeError
from trading_platform.topics import lookup

from trading_simulation.loop import INCARNATION

if TYPE_CHECKING:
    from trading_simulation.world import World

PENDING, COMMITTED, ABORTED = "pending", "committed", "aborted"


class ProducerFenced(Exception):
    """Another producer initialised this transactional id (the name order-management's is_fenced() knows)."""


class ComponentDown(ConnectionError):
    """The process this client belonged to has crashed: nothing it does reaches anything any more."""


class PublishLost(Exception):
    """The bus never took this record (injected: a send whose ack fails)."""


@dataclass
class Entry:
    topic: str
    partition: int
    offset: int
    key: str
    data: bytes
    status: str


@dataclass
class Bus:
    """The logs and the committed offsets: what survives every crash."""

    logs: dict[str, list[list[Entry]]] = field(default_factory=dict)
    committed: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (group, topic, partition) -> next
    dead_letters: list[tuple[str, str, str]] = field(default_factory=list)  # (topic, key, reason)
    pending: dict[tuple[str, int], set[int]] = field(default_factory=dict)  # offsets of open transactions' records

    def partitions(self, topic: str) -> list[list[Entry]]:
        if topic not in self.logs:
            self.logs[topic] = [[] for _ in range(lookup(topic).partitions)]
        return self.logs[topic]

    def partition_of(self, topic: str, key: str) -> int:
        return zlib.crc32(key.encode()) % len(self.partitions(topic))

    def append(self, topic: str, key: str, message: Message, status: str) -> tuple[int, int, Entry]:
        partition = self.partition_of(topic, key)
        log = self.partitions(topic)[partition]
        entry = Entry(topic, partition, len(log), key, message.SerializeToString(), status)
        log.append(entry)
        if status == PENDING:
            self.pending.setdefault((topic, partition), set()).add(entry.offset)
        return partition, entry.offset, entry

    def resolve(self, entry: Entry, status: str) -> None:
        """An open transaction's record is committed or aborted."""
        entry.status = status
        self.pending.get((entry.topic, entry.partition), set()).discard(entry.offset)

    def stable_end(self, topic: str, partition: int) -> int:
        """The last stable offset: read_committed readers see nothing at or after an open transaction's record."""
        pending = self.pending.get((topic, partition))
        if pending:
            return min(pending)
        return len(self.partitions(topic)[partition])

    def message(self, topic: str, partition: int, offset: int) -> ConsumedMessage:
        entry = self.partitions(topic)[partition][offset]
        value = lookup(topic).message_type.FromString(entry.data)
        return ConsumedMessage(topic=topic, partition=partition, offset=offset, key=entry.key, value=value)

    def committed_messages(self, topic: str) -> Iterable[ConsumedMessage]:
        """Every committed record of a topic (the checker's view of the log)."""
        for partition, log in enumerate(self.partitions(topic)):
            for offset, entry in enumerate(log):
                if entry.status == COMMITTED:
                    yield self.message(topic, partition, offset)


@dataclass
class _Transaction:
    entries: list[Entry] = field(default_factory=list)
    offsets: dict[tuple[str, str, int], int] = field(default_factory=dict)


_current_transaction: contextvars.ContextVar[SimPublisher | None] = contextvars.ContextVar(
    "sim_transaction", default=None
)


def world() -> World:
    from trading_simulation.world import current_world

    return current_world()


class SimPublisher:
    """Publisher on the in-memory bus (same signature and behaviour as trading_platform.messaging.Publisher)."""

    def __init__(
        self,
        connection: Any,
        producer_name: str,
        *,
        namespace: str = "",
        shadow: bool = False,
        transactional_id: str | None = None,
        **_: Any,
    ) -> None:
        self.world = world()
        self.incarnation = INCARNATION.get()
        self.producer_name = producer_name
        self.transactional_id = transactional_id
        self.fenced = False
        self._lock = asyncio.Lock()
        self._open: _Transaction | None = None

    @property
    def transactional(self) -> bool:
        return self.transactional_id is not None

    def _check_alive(self) -> None:
        if not self.world.alive(self.incarnation):
            raise ComponentDown(f"{self.incarnation} has crashed")
        if self.fenced:
            raise ProducerFenced(f"transactional id {self.transactional_id} was initialised by another producer")

    async def start(self) -> None:
        self._check_alive()
        if self.transactional_id is not None:
            self.world.fence(self.transactional_id, self)

    async def stop(self) -> None:
        return None

    def abort_open(self) -> None:
        if self._open is not None:
            for entry in self._open.entries:
                self.world.bus.resolve(entry, ABORTED)
            self._open = None

    def in_transaction(self) -> bool:
        return _current_transaction.get() is self

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SimPublisher]:
        if not self.transactional:
            raise RuntimeError(f"publisher {self.producer_name!r} has no transactional_id")
        if self.in_transaction():
            yield self
            return
        async with self._lock:
            self._check_alive()
            self._open = _Transaction()
            token = _current_transaction.set(self)
            try:
                try:
                    yield self
                    self._check_alive()
                    if self.world.faulty and self.world.rng.random() < self.world.config.p_commit_fails:
                        self.world.fault("transaction_abort", f"{self.producer_name}: commit failed")
                        raise ConnectionError("transaction commit failed (injected)")
                except BaseException:
                    self.abort_open()
                    raise
                transaction, self._open = self._open, None
                for entry in transaction.entries:
                    self.world.bus.resolve(entry, COMMITTED)
                self.world.bus.committed.update(transaction.offsets)
            finally:
                _current_transaction.reset(token)

    async def send_offsets_to_transaction(self, offsets: Mapping[Any, int], group_id: str) -> None:
        if not self.in_transaction() or self._open is None:
            raise RuntimeError("send_offsets_to_transaction needs an open transaction: `async with transaction()`")
        for (topic, partition), offset in offsets.items():
            self._open.offsets[(group_id, topic, partition)] = offset

    async def publish(self, topic: str, message: Message, key: str) -> tuple[int, int]:
        metadata = await (await self.send(topic, message, key))
        return metadata.partition, metadata.offset

    async def send(
        self, topic: str, message: Message, key: str, *, span_until_ack: bool = False
    ) -> asyncio.Future[Any]:
        registered = lookup(topic)
        if not isinstance(message, registered.message_type):
            raise MessageTypeError(f"{topic} carries {registered.type_name}, not {message.DESCRIPTOR.full_name}")
        if not envelope_of(message).message_id:
            raise ValueError(f"{message.DESCRIPTOR.full_name} has no envelope.message_id: use new_envelope()")
        if self.transactional and not self.in_transaction():
            async with self.transaction():
                delivery = await self.send(topic, message, key)
            return delivery
        self._check_alive()
        await asyncio.sleep(0)  # a send is never synchronous: other tasks run while it travels
        self._check_alive()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.transactional and self.world.lose_send(topic):
            future.set_exception(PublishLost(f"{topic}: the bus did not take the record (injected)"))
            return future
        status = PENDING if self._open is not None else COMMITTED
        partition, offset, entry = self.world.bus.append(registered.name, key, message, status)
        if self._open is not None:
            self._open.entries.append(entry)
        self.world.note_published(self.producer_name, registered.name, key, message)
        future.set_result(SimpleNamespace(partition=partition, offset=offset, topic=registered.name))
        return future

    async def publish_dead_letter(self, dead_letter: Any, source_topic: str) -> None:
        self.world.bus.dead_letters.append((source_topic, dead_letter.key, dead_letter.reason))


class SimConsumer:
    """Consumer on the in-memory bus: the committing loop (sequential or key lanes) and the transactional loop, with
    the idempotency store, retries then dead letters (committing loops) or an aborted batch (transactional)."""

    def __init__(
        self,
        connection: Any,
        group_id: str,
        topics: Iterable[str],
        handler: Any,
        *,
        publisher: Any = None,
        idempotency: Any = None,
        shadow: bool = False,
        max_attempts: int = 3,
        auto_offset_reset: str = "earliest",
        concurrent_keys: bool = False,
        transactional: bool = False,
        start_at_ms: Any = None,
        **_: Any,
    ) -> None:
        if transactional and (publisher is None or not publisher.transactional):
            raise ValueError("Consumer(transactional=True) needs a publisher with a transactional_id")
        self.world = world()
        self.incarnation = INCARNATION.get()
        self.group_id = group_id + ("-shadow" if shadow else "")
        self.topics = [lookup(t).name for t in topics]
        self.handler = handler
        self.publisher = publisher
        self.idempotency = idempotency if idempotency is not None else MemoryIdempotencyStore()
        self.max_attempts = max_attempts
        self.auto_offset_reset = auto_offset_reset
        self.concurrent_keys = concurrent_keys
        self.transactional = transactional
        self.position: dict[tuple[str, int], int] = {}
        self.inbox: list[ConsumedMessage] = []
        self.handled: dict[tuple[str, int], set[int]] = defaultdict(set)  # lanes: handled, not yet committed
        self.in_flight: set[tuple[str, int, int]] = set()
        self.lane_tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self.started = False

    # -- the simulation's side -------------------------------------------------------------------------------------
    def deliverable(self) -> list[tuple[str, int]]:
        """Partitions with a committed record this consumer has not been handed yet."""
        if not self.started or self._stopping:
            return []
        bus = self.world.bus
        return [tp for tp, position in self.position.items() if position < bus.stable_end(*tp)]

    def hand(self, topic: str, partition: int, count: int) -> int:
        """Fetch up to count records of one partition into the consumer (the simulation chose this delivery)."""
        bus = self.world.bus
        end = bus.stable_end(topic, partition)
        handed = 0
        while handed < count and self.position[(topic, partition)] < end:
            offset = self.position[(topic, partition)]
            self.position[(topic, partition)] = offset + 1
            if bus.partitions(topic)[partition][offset].status != COMMITTED:
                continue  # an aborted transaction's record: read_committed skips it
            self.inbox.append(bus.message(topic, partition, offset))
            handed += 1
        if handed:
            self._wake.set()
        return handed

    def rebalance(self) -> None:
        """Hand the partitions back and take them again: everything not committed is delivered again."""
        if not self.started or self.in_flight or self.inbox:
            return
        self.handled.clear()
        self._seek_committed()

    def commit(self) -> None:
        """Lane consumers commit, per partition, the run of handled records from the committed offset."""
        bus = self.world.bus
        for (topic, partition), offsets in self.handled.items():
            key = (self.group_id, topic, partition)
            start = bus.committed.get(key, 0)
            while start in offsets:
                offsets.discard(start)
                start += 1
            bus.committed[key] = start

    def _seek_committed(self) -> None:
        bus = self.world.bus
        for topic in self.topics:
            for partition in range(len(bus.partitions(topic))):
                committed = bus.committed.get((self.group_id, topic, partition))
                if committed is None:
                    committed = 0 if self.auto_offset_reset == "earliest" else len(bus.partitions(topic)[partition])
                    if self.auto_offset_reset != "earliest":
                        bus.committed[(self.group_id, topic, partition)] = committed
                self.position[(topic, partition)] = committed

    # -- the service's side --------------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.world.alive(self.incarnation):
            raise ComponentDown(f"{self.incarnation} has crashed")
        self._seek_committed()
        self.started = True
        self.world.consumers.append(self)

    async def run(self) -> None:
        try:
            while not self._stopping:
                if not self.inbox:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                batch, self.inbox = self.inbox, []
                if self.transactional:
                    await self._transactional_batch(batch)
                elif self.concurrent_keys:
                    for message in batch:
                        self._to_lane(message)
                else:
                    for message in batch:
                        await self._handle(message)
                        self.handled[(message.topic, message.partition)].add(message.offset)
                    self.commit()
        finally:
            self._stopped.set()

    async def _transactional_batch(self, batch: list[ConsumedMessage]) -> None:
        marks: list[str] = []
        async with self.publisher.transaction():
            by_key: dict[str | None, list[ConsumedMessage]] = defaultdict(list)
            for message in batch:
                by_key[message.key].append(message)

            async def lane(messages: list[ConsumedMessage]) -> None:
                for message in messages:
                    message_id = message.envelope.message_id
                    if await self.idempotency.seen(message_id) or message_id in marks:
                        continue
                    await self.handler(message)
                    marks.append(message_id)

            results = await asyncio.gather(*(lane(m) for m in by_key.values()), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            offsets: dict[tuple[str, int], int] = {}
            for message in batch:
                offsets[(message.topic, message.partition)] = message.offset + 1
            await self.publisher.send_offsets_to_transaction(offsets, self.group_id)
        for message_id in marks:
            await self.idempotency.mark(message_id)

    def _to_lane(self, message: ConsumedMessage) -> None:
        lane_key = f"{message.topic}/{message.partition}/{message.key}"
        previous = self.lane_tasks.get(lane_key)
        self.in_flight.add((message.topic, message.partition, message.offset))

        async def run_after() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await self._handle(message)
                self.handled[(message.topic, message.partition)].add(message.offset)
            finally:
                self.in_flight.discard((message.topic, message.partition, message.offset))

        self.lane_tasks[lane_key] = asyncio.get_running_loop().create_task(run_after())

    async def _handle(self, message: ConsumedMessage) -> None:
        message_id = message.envelope.message_id
        if await self.idempotency.seen(message_id):
            return
        for attempt in range(self.max_attempts):
            try:
                await self.handler(message)
                break
            except Exception as error:
                if attempt + 1 == self.max_attempts:
                    key = message.key or ""
                    self.world.bus.dead_letters.append((message.topic, key, f"{type(error).__name__}: {error}"))
                    self.world.note(f"dead letter {message.topic} {key}: {type(error).__name__}: {error}")
                    break
                await asyncio.sleep(0.05 * 2**attempt)
        await self.idempotency.mark(message_id)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self.started:
            await self._stopped.wait()
        if self.lane_tasks:
            await asyncio.gather(*self.lane_tasks.values(), return_exceptions=True)
        self.commit() if not self.transactional else None

    async def close(self) -> None:
        if self in self.world.consumers:
            self.world.consumers.remove(self)


async def sim_replay(
    connection: Any,
    topic: str,
    *,
    namespace: str = "",
    since_ms: int | None = None,
    start_offsets: dict[int, int] | None = None,
    last: int | None = None,
    **_: Any,
) -> AsyncIterator[ConsumedMessage]:
    """Every committed record of a topic up to its end at the call (from start_offsets, or the last few)."""
    bus = world().bus
    name = lookup(topic).name
    ends = {p: bus.stable_end(name, p) for p in range(len(bus.partitions(name)))}
    for partition, end in ends.items():
        if start_offsets:
            start = start_offsets.get(partition, 0)
        elif last is not None:
            start = max(0, end - last)
        else:
            start = 0
        for offset in range(start, end):
            if bus.partitions(name)[partition][offset].status == COMMITTED:
                yield bus.message(name, partition, offset)
        await asyncio.sleep(0)


async def sim_ensure_topics(*_: Any, **__: Any) -> None:
    return None
