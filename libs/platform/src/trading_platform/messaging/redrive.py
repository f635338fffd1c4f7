"""Dead letters after the fix: read a topic's dead letters (`read_dead_letters`), and redrive them to the topic they
came from (`redrive`), exactly once, however often it is run (`tradectl dlq`).

A redrive sends each dead letter's record back as it was: its source topic and partition, key, value and headers,
so the message keeps its envelope.message_id and a consumer that already handled it drops it as a duplicate, plus a
`redriven_from` header (`<dlq topic>:<partition>:<offset>`). What has been redriven is the committed offset of the
consumer group `<namespace>tradectl-dlq-redrive.<dlq topic>` on the dead-letter topic (named after the operator's
principal, whose groups and transactional ids the ACLs grant by that prefix). The records and that offset are written
in one Kafka transaction (transactional id = the group's name), so a redrive that fails half-way leaves nothing, and
a second redrive starts after the last one: nothing is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from trading.common.v1 import common_pb2

from trading_platform.messaging.connection import (
    CLIENT_TIMEOUTS,
    START_TIMEOUT_S,
    KafkaConnection,
    connection_of,
    start_client,
)
from trading_platform.messaging.names import TopicNames
from trading_platform.messaging.replay import end_offsets_of, replay
from trading_platform.topics import DLQ_SUFFIX, OPERATOR, lookup

REDRIVEN_FROM = "redriven_from"


@dataclass(frozen=True)
class DeadLetterRecord:
    """A dead letter as it sits on `<topic>.dlq`: where (partition, offset), and whether a redrive sent it already."""

    partition: int
    offset: int
    timestamp_ms: int
    letter: common_pb2.DeadLetter
    redriven: bool


def dead_letter_topic(topic: str) -> str:
    """The registered dead-letter topic of a topic given as `<topic>` or `<topic>.dlq`."""
    base = topic[: -len(DLQ_SUFFIX)] if topic.endswith(DLQ_SUFFIX) else topic
    return lookup(lookup(base).name + DLQ_SUFFIX).name  # UnknownTopicError for anything not registered


def redrive_group(namespace: str, dead_letters: str) -> str:
    """The consumer group (and transactional id) that remembers how far the redrives of a dead-letter topic got."""
    return f"{namespace}{OPERATOR}-dlq-redrive.{dead_letter_topic(dead_letters)}"


async def redriven_up_to(
    connection: KafkaConnection | str, topic: str, *, namespace: str = "", start_timeout_s: float = START_TIMEOUT_S
) -> dict[int, int]:
    """Per partition of a topic's dead-letter topic, the offset before which everything has been redriven."""
    target = connection_of(connection)
    physical_dlq = TopicNames(namespace).physical(dead_letter_topic(topic))
    consumer = _group_reader(target, redrive_group(namespace, topic))
    await start_client(consumer.start, target, start_timeout_s)
    try:
        return await _committed(consumer, physical_dlq)
    finally:
        await consumer.stop()


async def read_dead_letters(
    connection: KafkaConnection | str,
    topic: str,
    *,
    namespace: str = "",
    start_timeout_s: float = START_TIMEOUT_S,
) -> list[DeadLetterRecord]:
    """Every dead letter of a topic (`<topic>` or `<topic>.dlq`), oldest first per partition."""
    name = dead_letter_topic(topic)
    done = await redriven_up_to(connection, name, namespace=namespace, start_timeout_s=start_timeout_s)
    return [
        DeadLetterRecord(
            message.partition,
            message.offset,
            message.timestamp_ms,
            message.value,  # type: ignore[arg-type]
            message.offset < done.get(message.partition, 0),
        )
        async for message in replay(connection, name, namespace=namespace, start_timeout_s=start_timeout_s)
    ]


@dataclass(frozen=True)
class Redriven:
    dead_letter_partition: int
    dead_letter_offset: int
    topic: str  # the physical topic it went back to
    partition: int
    message_id: str


@dataclass(frozen=True)
class RedriveResult:
    dead_letter_topic: str  # physical
    sent: list[Redriven]
    already_redriven: int  # dead letters an earlier redrive sent (left alone)
    dry_run: bool


async def redrive(
    connection: KafkaConnection | str,
    topic: str,
    *,
    namespace: str = "",
    dry_run: bool = False,
    start_timeout_s: float = START_TIMEOUT_S,
) -> RedriveResult:
    """Send every dead letter of `topic` not redriven yet back to its source topic and partition, and commit how far
    it got, in one transaction (module docstring). `dry_run`: say what would be sent, send nothing."""
    target = connection_of(connection)
    physical = TopicNames(namespace).physical(dead_letter_topic(topic))
    group = redrive_group(namespace, topic)
    producer = AIOKafkaProducer(
        **target.client_options(),
        **CLIENT_TIMEOUTS,
        client_id="tradectl-dlq-redrive",
        acks="all",
        enable_idempotence=True,
        transactional_id=group,
    )
    if not dry_run:  # first: initialising the transactional id fences a redrive of the same topic still running
        await start_client(producer.start, target, start_timeout_s)
    try:
        records = await read_dead_letters(target, topic, namespace=namespace, start_timeout_s=start_timeout_s)
        pending = [record for record in records if not record.redriven]
        sent = [
            Redriven(r.partition, r.offset, r.letter.source_topic, r.letter.source_partition, _message_id(r.letter))
            for r in pending
        ]
        result = RedriveResult(physical, sent, len(records) - len(pending), dry_run)
        if dry_run or not pending:
            return result
        # The next offset after the last record redriven, per partition (records come in offset order).
        offsets = {TopicPartition(physical, r.partition): r.offset + 1 for r in pending}
        async with producer.transaction():
            for record in pending:
                letter = record.letter
                headers = [(k, v) for k, v in letter.headers.items() if k != REDRIVEN_FROM]
                headers.append((REDRIVEN_FROM, f"{physical}:{record.partition}:{record.offset}".encode()))
                await producer.send(
                    letter.source_topic,
                    letter.value or None,
                    key=letter.key or None,
                    partition=letter.source_partition,
                    headers=headers,
                )
            await producer.send_offsets_to_transaction(offsets, group)
        return result
    finally:
        if not dry_run:
            await producer.stop()


def _message_id(letter: common_pb2.DeadLetter) -> str:
    return letter.headers.get("message_id", b"").decode(errors="replace")


def _group_reader(connection: KafkaConnection, group: str) -> AIOKafkaConsumer:
    """A consumer that only reads the redrive group's committed offsets (it never joins or fetches)."""
    return AIOKafkaConsumer(
        **connection.client_options(),
        **CLIENT_TIMEOUTS,
        group_id=group,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )


async def _committed(consumer: AIOKafkaConsumer, physical_dlq: str) -> dict[int, int]:
    ends = (await end_offsets_of(consumer, [physical_dlq])).get(physical_dlq, {})
    committed: dict[int, int] = {}
    for partition in ends:
        offset = await consumer.committed(TopicPartition(physical_dlq, partition))
        if offset is not None:
            committed[partition] = offset
    return committed
