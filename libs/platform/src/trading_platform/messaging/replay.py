"""Reading a topic's log from the beginning (replay) and the end offsets of topics (end_offsets).

Replay is how a service rebuilds its state from its event log (invariant 4 of docs/architecture.md): every committed
message of a topic from the beginning up to the end it had when the replay started, then stop. Both read with
isolation_level="read_committed", so a rebuild never sees the records of an aborted transaction, and the end of a
partition is its last stable offset (an open transaction's records are not waited for).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from trading_platform.messaging.connection import (
    CLIENT_TIMEOUTS,
    START_TIMEOUT_S,
    KafkaConnection,
    connection_of,
    start_client,
)
from trading_platform.messaging.records import BadRecord, ConsumedMessage, consumed, decode
from trading_platform.topics import lookup

REPLAY_FETCH_MS = 500


def _reader(connection: KafkaConnection) -> AIOKafkaConsumer:
    """A consumer without a group: nothing is committed."""
    return AIOKafkaConsumer(
        **connection.client_options(),
        **CLIENT_TIMEOUTS,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


async def end_offsets(
    connection: KafkaConnection | str, physical_topics: Iterable[str], *, start_timeout_s: float = START_TIMEOUT_S
) -> dict[str, dict[int, int]]:
    """Current (last stable) end offset of every partition of the given topics (topics that do not exist are left
    out)."""
    target = connection_of(connection)
    consumer = _reader(target)
    await start_client(consumer.start, target, start_timeout_s)
    try:
        return await end_offsets_of(consumer, physical_topics)
    finally:
        await consumer.stop()


async def end_offsets_of(consumer: AIOKafkaConsumer, physical_topics: Iterable[str]) -> dict[str, dict[int, int]]:
    """end_offsets on a started client of the caller's (a reader, or a group member that only reads offsets)."""
    result: dict[str, dict[int, int]] = {}
    partitions = []
    names = list(physical_topics)
    # A consumer without a subscription tracks no topics, and its periodic metadata refresh then asks for none, so
    # what its start-up metadata knew can vanish: track these topics, then ask (a topic that does not exist is left
    # out; without this, a replay could find an existing log "empty" and a rebuild start from nothing).
    for name in names:
        consumer._client.add_topic(name)
    await consumer._client.force_metadata_update()
    for name in names:
        ids = consumer.partitions_for_topic(name)
        partitions += [TopicPartition(name, p) for p in sorted(ids or ())]
    if partitions:
        offsets = await consumer.end_offsets(partitions)
        for tp, offset in offsets.items():
            result.setdefault(tp.topic, {})[tp.partition] = offset
    return result


async def replay(
    connection: KafkaConnection | str,
    topic: str,
    *,
    namespace: str = "",
    timeout_s: float = 30.0,
    start_timeout_s: float = START_TIMEOUT_S,
    since_ms: int | None = None,
    start_offsets: dict[int, int] | None = None,
    last: int | None = None,
) -> AsyncIterator[ConsumedMessage]:
    """Every message of a topic from the beginning (or from the first record at or after `since_ms`, UNIX ms: a
    replay whose cost is bounded by a time window, not by the topic's whole history), or from `start_offsets` (per
    partition: after a snapshot that covers what came before), or only the `last` records of each partition (the
    latest snapshot), up to its end at the time of the call, then stop.

    A partition is done once the consumer's position reached the end captured at the start (control records of
    transactions count: the position moves past them); records appended after that are not yielded. No consumer
    group: nothing is committed. Records that do not decode are skipped here (the live consumer dead-letters them).
    """
    target = connection_of(connection)
    registered = lookup(topic)
    physical = namespace + registered.name
    consumer = _reader(target)
    await start_client(consumer.start, target, start_timeout_s)
    try:
        ends = (await end_offsets_of(consumer, [physical])).get(physical, {})
        remaining = {TopicPartition(physical, p): end for p, end in ends.items() if end > 0}
        if not remaining:
            return
        consumer.assign(list(remaining))
        await consumer.seek_to_beginning(*remaining)
        if start_offsets or last is not None:
            beginnings = await consumer.beginning_offsets(list(remaining))
            for tp in list(remaining):
                start = start_offsets.get(tp.partition, 0) if start_offsets else remaining[tp] - (last or 0)
                start = max(start, beginnings[tp])
                if start >= remaining[tp]:
                    del remaining[tp]
                else:
                    consumer.seek(tp, start)
        if since_ms is not None:
            found = await consumer.offsets_for_times({tp: since_ms for tp in remaining})
            for tp in list(remaining):
                at = found.get(tp)
                if at is None:  # nothing that recent in this partition
                    del remaining[tp]
                else:
                    consumer.seek(tp, at.offset)
        deadline = time.monotonic() + timeout_s
        while True:
            for tp in [tp for tp, end in remaining.items() if await consumer.position(tp) >= end]:
                del remaining[tp]
            if not remaining:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"replay of {physical} did not reach the end offsets {ends} in {timeout_s} s")
            batch = await consumer.getmany(*remaining, timeout_ms=REPLAY_FETCH_MS)
            for tp, records in batch.items():
                end = remaining.get(tp)
                for record in records:
                    if end is None or record.offset >= end:
                        break  # appended after the replay started
                    try:
                        value = decode(registered, record.value)
                    except BadRecord:
                        continue
                    yield consumed(registered, record, value)
    finally:
        await consumer.stop()
