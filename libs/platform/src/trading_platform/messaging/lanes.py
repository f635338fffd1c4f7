"""Key lanes (Consumer(concurrent_keys=True)): the records of a consumer are handled in lanes, one per partition and
key, side by side; each lane in its order (records of one key stay in order, as Kafka orders them).

For handlers whose state is per key or guarded per key (a signal per symbol, an order per client order id): a burst
of four symbols' records then costs one handler's time, not four. In the committing loop fetching goes on while the
lanes work (at most `max_in_flight` records outstanding), a partition commits only the run of handled records from
its oldest outstanding one, and a partition taken away in a rebalance is settled (its lanes finish, its offsets are
committed) before it goes. The transactional loop hands the lanes one batch and waits for all of it.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from trading_platform.messaging.failures import Interrupted, RetryWaits
from trading_platform.messaging.records import Record

log = structlog.get_logger("trading_platform.messaging")


class KeyLanes:
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
        except Interrupted:  # stopped while the record waited for a retry: it stays outstanding (uncommitted)
            pass
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


class SettleOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """A revoked partition's lanes finish their current record (one waiting out a transient error stops waiting)
    and its handled records are committed before it goes."""

    def __init__(self, lanes: KeyLanes, consumer: AIOKafkaConsumer, waits: RetryWaits | None = None) -> None:
        self.lanes = lanes
        self.consumer = consumer
        self.waits = waits

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.waits is not None:
            self.waits.begin_revoke(set(revoked))
        try:
            commits = await self.lanes.settle(set(revoked))
        finally:
            if self.waits is not None:
                self.waits.end_revoke(set(revoked))
        if commits:
            try:
                await self.consumer.commit(commits)
            except Exception as error:  # only means redelivery to the next owner, and idempotency absorbs it
                log.warning("commit before a rebalance failed", error=str(error))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass
