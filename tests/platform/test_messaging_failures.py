"""The consumer's retry policy over a real Kafka broker: a transient error is waited out (long, with backoff, nothing
after it committed, health naming it), a permanent one is dead-lettered at once with what a redrive needs, and a
transient error that outlasts its bound is dead-lettered as such."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel, ValidationError
from redis import exceptions as redis_errors
from trading.common.v1 import common_pb2
from trading.marketdata.v1 import marketdata_pb2
from trading.signal.v1 import signal_pb2
from trading_platform.envelope import new_envelope
from trading_platform.messaging import ConsumedMessage, Consumer, PermanentError, Publisher, ensure_topics, replay
from trading_platform.messaging.failures import TransientError, kind_of
from trading_platform.testing.plugin import FAST_GROUP_OPTIONS

pytestmark = pytest.mark.integration
BARS = "marketdata.bars.v1"


def bar(symbol: str = "AAPL", close: float = 101.0) -> marketdata_pb2.Bar:
    return marketdata_pb2.Bar(envelope=new_envelope("test"), symbol=symbol, interval_seconds=60, close=close)


async def publish(bootstrap: str, namespace: str, *bars: marketdata_pb2.Bar) -> None:
    await ensure_topics(bootstrap, [BARS, BARS + ".dlq"], namespace=namespace)
    async with Publisher(bootstrap, "test", namespace=namespace) as publisher:
        for message in bars:
            await publisher.publish(BARS, message, key=message.symbol)


async def committed(bootstrap: str, group: str, physical: str) -> dict[int, int | None]:
    checker = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await checker.start()
    try:
        return {p: await checker.committed(TopicPartition(physical, p)) for p in range(3)}
    finally:
        await checker.stop()


async def wait_for(condition: object, timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


class Limits(BaseModel):
    quantity: int


def test_errors_are_classified_as_permanent_transient_or_unknown() -> None:
    try:
        Limits.model_validate({"quantity": "many"})
    except ValidationError as error:
        validation = error
    unavailable = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())
    invalid = grpc.aio.AioRpcError(grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata())
    assert kind_of(PermanentError("no")) == kind_of(validation) == "permanent"
    for error in (ConnectionError(), TimeoutError(), TransientError(), redis_errors.ConnectionError(), unavailable):
        assert kind_of(error) == "transient", error
    assert kind_of(invalid) == kind_of(KeyError("x")) == kind_of(ValueError("x")) == "unknown"


async def test_a_transient_error_is_waited_out_without_committing_past_it_and_health_says_why(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    first, second = bar(close=1.0), bar(close=2.0)  # one key: one partition, in order
    await publish(kafka_bootstrap, topic_namespace, first, second)
    down = True
    tries: list[float] = []
    handled: list[float] = []

    async def handler(message: ConsumedMessage) -> None:
        tries.append(time.monotonic())
        if down:
            raise ConnectionError("fill service unreachable")
        handled.append(message.value.close)  # type: ignore[attr-defined]

    group = f"{topic_namespace}g"
    consumer = Consumer(
        kafka_bootstrap,
        group,
        [BARS],
        handler,
        namespace=topic_namespace,
        group_options=FAST_GROUP_OPTIONS,
        retry_initial_s=0.05,
        transient_backoff_max_s=0.4,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: len(tries) >= 2)
        await asyncio.sleep(2.5)  # far longer than the old retry budget (~0.15 s)
        health = consumer.health()
        assert health is not None and "retrying" in health and "ConnectionError: fill service unreachable" in health
        assert f"{topic_namespace}{BARS}[" in health and "nothing after it committed" in health
        assert consumer.dead_lettered == 0 and handled == []
        assert set((await committed(kafka_bootstrap, group, topic_namespace + BARS)).values()) == {None}
        assert len(tries) > 5  # tried again and again, not given up after three
        down = False  # the dependency is back
        await wait_for(lambda: handled == [1.0, 2.0])
    finally:
        await consumer.stop()
        await task
        await consumer.close()
    assert consumer.health() is None and consumer.dead_lettered == 0
    assert sorted((await committed(kafka_bootstrap, group, topic_namespace + BARS)).values(), key=str) == [
        2,
        None,
        None,
    ]


async def test_a_permanent_error_is_dead_lettered_at_once_with_what_a_redrive_needs(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    rejected, after = bar("REJECT"), bar("AAPL")
    await publish(kafka_bootstrap, topic_namespace, rejected, after)
    attempts: list[str] = []

    async def handler(message: ConsumedMessage) -> None:
        attempts.append(message.value.symbol)  # type: ignore[attr-defined]
        if message.value.symbol == "REJECT":  # type: ignore[attr-defined]
            Limits.model_validate({"quantity": "many"})

    consumer = Consumer(
        kafka_bootstrap,
        f"{topic_namespace}g",
        [BARS],
        handler,
        namespace=topic_namespace,
        group_options=FAST_GROUP_OPTIONS,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: consumer.dead_lettered == 1 and consumer.handled == 1)
    finally:
        await consumer.stop()
        await task
        await consumer.close()
    assert attempts.count("REJECT") == 1  # not retried
    letters = [m.value async for m in replay(kafka_bootstrap, BARS + ".dlq", namespace=topic_namespace)]
    assert len(letters) == 1
    letter = letters[0]
    assert isinstance(letter, common_pb2.DeadLetter)
    assert letter.reason_code == "validation_error" and letter.error_type == "ValidationError"
    assert "quantity" in letter.reason and letter.attempts == 1
    assert letter.source_topic == topic_namespace + BARS and letter.key == b"REJECT"
    assert marketdata_pb2.Bar.FromString(letter.value) == rejected
    assert letter.headers["message_id"] == rejected.envelope.message_id.encode()
    assert letter.source_timestamp_ms > 0 and letter.envelope.ts_event >= letter.source_timestamp_ms * 1_000_000
    assert letter.consumer_group == f"{topic_namespace}g"


async def test_a_transient_error_past_its_bound_is_dead_lettered_as_transient_exhausted(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    await publish(kafka_bootstrap, topic_namespace, bar())

    async def handler(message: ConsumedMessage) -> None:
        raise TimeoutError("risk did not answer")

    consumer = Consumer(
        kafka_bootstrap,
        f"{topic_namespace}g",
        [BARS],
        handler,
        namespace=topic_namespace,
        group_options=FAST_GROUP_OPTIONS,
        retry_initial_s=0.05,
        transient_retry_s=0.6,
        transient_backoff_max_s=0.1,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: consumer.dead_lettered == 1)
    finally:
        await consumer.stop()
        await task
        await consumer.close()
    [letter] = [m.value async for m in replay(kafka_bootstrap, BARS + ".dlq", namespace=topic_namespace)]
    assert letter.reason_code == "transient_exhausted"  # type: ignore[attr-defined]
    assert letter.error_type == "TimeoutError" and letter.attempts > 3  # type: ignore[attr-defined]
    assert "risk did not answer" in letter.reason  # type: ignore[attr-defined]


async def test_a_stop_during_a_transient_retry_in_key_lanes_leaves_that_message_for_the_next_consumer(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    stuck, fine = bar("STUCK"), bar("FINE")
    await publish(kafka_bootstrap, topic_namespace, stuck, fine)
    handled: list[str] = []

    async def flaky(message: ConsumedMessage) -> None:
        if message.value.symbol == "STUCK":  # type: ignore[attr-defined]
            raise TransientError("downstream down")
        handled.append(message.value.symbol)  # type: ignore[attr-defined]

    def consumer_of(handler: object) -> Consumer:
        return Consumer(
            kafka_bootstrap,
            f"{topic_namespace}lanes",
            [BARS],
            handler,  # type: ignore[arg-type]
            namespace=topic_namespace,
            group_options=FAST_GROUP_OPTIONS,
            concurrent_keys=True,
            retry_initial_s=30.0,  # the first retry waits 30 s
            transient_backoff_max_s=60.0,
        )

    consumer = consumer_of(flaky)
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: handled == ["FINE"] and consumer.stalls)  # the other key is not held up
        assert "STUCK" not in handled and "TransientError: downstream down" in (consumer.health() or "")
        started = time.monotonic()
    finally:
        await consumer.stop()
        await task
        await consumer.close()
    assert time.monotonic() - started < 15.0  # the stop cut the 30 s wait short
    assert consumer.dead_lettered == 0

    again: list[str] = []

    async def healthy(message: ConsumedMessage) -> None:
        again.append(message.value.symbol)  # type: ignore[attr-defined]

    second = consumer_of(healthy)
    await second.start()
    task = asyncio.create_task(second.run())
    try:
        await wait_for(lambda: "STUCK" in again)
    finally:
        await second.stop()
        await task
        await second.close()


@pytest.mark.parametrize("concurrent_keys", [False, True], ids=["sequential", "key-lanes"])
async def test_a_rebalance_is_not_held_up_by_a_message_waiting_out_a_transient_error(
    kafka_bootstrap: str, topic_namespace: str, concurrent_keys: bool
) -> None:
    """A consumer waiting 30 s before its next try lets a rebalance through at once: its partition's message is left
    uncommitted for the next owner, and the consumer neither dies (a commit after being fenced out of the group) nor
    skips anything."""
    sent = [bar(f"S{i}") for i in range(9)]  # spread over the 3 partitions
    await publish(kafka_bootstrap, topic_namespace, *sent)
    group = f"{topic_namespace}rebalance"

    async def down(message: ConsumedMessage) -> None:
        raise ConnectionError("this instance's dependency is down")

    handled: list[str] = []

    async def healthy(message: ConsumedMessage) -> None:
        handled.append(message.envelope.message_id)

    def consumer_of(handler: object) -> Consumer:
        return Consumer(
            kafka_bootstrap,
            group,
            [BARS],
            handler,  # type: ignore[arg-type]
            namespace=topic_namespace,
            group_options=FAST_GROUP_OPTIONS,
            concurrent_keys=concurrent_keys,
            retry_initial_s=30.0,
        )

    stuck = consumer_of(down)
    await stuck.start()
    stuck_task = asyncio.create_task(stuck.run())
    other = consumer_of(healthy)
    try:
        await wait_for(lambda: bool(stuck.stalls))  # waiting 30 s before its second try
        started = time.monotonic()
        await other.start()  # a rebalance: it has to wait for the stuck member's revocation
        joined_in = time.monotonic() - started
        # The stuck member took part in the rebalance (its revocation did not wait out the 30 s): the partitions
        # are shared, not all handed to the newcomer after the stuck one was dropped from the group.
        shared = (len(other._consumer.assignment()), len(stuck._consumer.assignment()))
        other_task = asyncio.create_task(other.run())
        await stuck.stop()  # leaves: the healthy member gets every partition
        await stuck_task
        await stuck.close()
        await wait_for(lambda: len(set(handled)) == len(sent), timeout_s=40)
        await other.stop()
        await other_task
    finally:
        await other.close()
        if not stuck.closed:
            await stuck.stop()
            await stuck.close()
    assert joined_in < 20  # far less than the 30 s wait it would otherwise have sat out
    assert shared[0] < 3 and shared[1] > 0, shared
    assert stuck.failure is None and stuck.dead_lettered == 0 and stuck.handled == 0
    assert set(handled) == {m.envelope.message_id for m in sent}  # nothing skipped


def lose_sequence(publisher: Publisher, physical: str) -> None:
    """Make the broker refuse the producer's next batch with OutOfOrderSequenceNumber, as it does to a producer whose
    sequence it no longer matches after a restart: jump the client's sequence on every partition of the topic."""
    manager = publisher._producer._txn_manager
    assert manager is not None
    for partition in range(3):
        manager.increment_sequence_number(TopicPartition(physical, partition), 1_000)


async def test_a_producer_that_lost_its_sequence_is_replaced_and_the_handler_tries_again_on_the_new_one(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    """After a broker restart an idempotent producer can be told OutOfOrderSequenceNumber for good (aiokafka does not
    recover): every publish failed and the consumer dead-lettered what it was handling while reporting SERVING. The
    publisher now replaces the producer and raises TransientError, so the message is retried, not dead-lettered."""
    out = "signal.signals.v1"
    await ensure_topics(kafka_bootstrap, [out, out + ".dlq"], namespace=topic_namespace)
    await publish(kafka_bootstrap, topic_namespace, bar("AAPL"), bar("MSFT"))
    async with Publisher(kafka_bootstrap, "signal", namespace=topic_namespace) as publisher:
        first = signal_pb2.SignalGenerated(envelope=new_envelope("signal"), symbol="IBM")
        await publisher.publish(out, first, key="IBM")  # the producer has a sequence with the broker
        lose_sequence(publisher, topic_namespace + out)

        async def handler(message: ConsumedMessage) -> None:
            symbol = message.value.symbol  # type: ignore[attr-defined]
            signal = signal_pb2.SignalGenerated(envelope=new_envelope("signal"), symbol=symbol)
            # to IBM's partition: where the broker knows this producer's sequence (a partition it never wrote to
            # takes any first sequence)
            await publisher.publish(out, signal, key="IBM")

        consumer = Consumer(
            kafka_bootstrap,
            f"{topic_namespace}g",
            [BARS],
            handler,
            namespace=topic_namespace,
            group_options=FAST_GROUP_OPTIONS,
            transient_backoff_max_s=0.2,
        )
        await consumer.start()
        task = asyncio.create_task(consumer.run())
        try:
            await wait_for(lambda: consumer.handled == 2, timeout_s=60)
        finally:
            await consumer.stop()
            await task
            await consumer.close()
        assert publisher.renewals == 1  # one replacement, however many sends failed on the broken producer
        assert consumer.dead_lettered == 0
    written = [m.value.symbol async for m in replay(kafka_bootstrap, out, namespace=topic_namespace)]
    assert sorted(written) == ["AAPL", "IBM", "MSFT"]  # each once: the refused batch was not written
    assert [m async for m in replay(kafka_bootstrap, BARS + ".dlq", namespace=topic_namespace)] == []
