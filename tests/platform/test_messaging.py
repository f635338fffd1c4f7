"""Messaging over the real Kafka-protocol broker: envelope and trace context, dead letters, redelivery."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from trading.common.v1 import common_pb2
from trading.marketdata.v1 import marketdata_pb2
from trading.risk.v1 import risk_pb2
from trading_platform.envelope import new_envelope
from trading_platform.messaging import (
    ConsumedMessage,
    Consumer,
    ConsumerJoinError,
    MessageTypeError,
    PermanentError,
    Publisher,
    RedisIdempotencyStore,
    _Lanes,
    ensure_topics,
    replay,
)
from trading_platform.testing.plugin import FAST_GROUP_OPTIONS

pytestmark = pytest.mark.integration


def bar(symbol: str = "AAPL", close: float = 101.0) -> marketdata_pb2.Bar:
    return marketdata_pb2.Bar(
        envelope=new_envelope("test"),
        symbol=symbol,
        interval_seconds=60,
        open=100.0,
        high=102.0,
        low=99.5,
        close=close,
        volume=1200,
    )


async def consume_until(consumer: Consumer, done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(timeout_s):
            while not done():
                await asyncio.sleep(0.02)
    finally:
        await consumer.stop()
        await task
        await consumer.close()


async def collect(kafka_bootstrap: str, namespace: str, topic: str, count: int) -> list[ConsumedMessage]:
    received: list[ConsumedMessage] = []

    async def handler(message: ConsumedMessage) -> None:
        received.append(message)

    consumer = Consumer(
        kafka_bootstrap, f"{namespace}reader", [topic], handler, namespace=namespace, group_options=FAST_GROUP_OPTIONS
    )
    await consume_until(consumer, lambda: len(received) >= count)
    return received


async def test_typed_message_round_trips_with_envelope_and_trace_context(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    sent = bar()
    async with Publisher(kafka_bootstrap, "market-data", namespace=topic_namespace) as publisher:
        with tracer.start_as_current_span("decision") as span:
            producer_trace_id = span.get_span_context().trace_id
            await publisher.publish("marketdata.bars.v1", sent, key="AAPL")

    seen_trace_ids: list[int] = []

    async def handler(message: ConsumedMessage) -> None:
        seen_trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        received.append(message)

    received: list[ConsumedMessage] = []
    previous = trace.get_tracer_provider()
    trace.set_tracer_provider(provider) if not isinstance(previous, TracerProvider) else None
    consumer = Consumer(
        kafka_bootstrap,
        f"{topic_namespace}g",
        ["marketdata.bars.v1"],
        handler,
        namespace=topic_namespace,
        group_options=FAST_GROUP_OPTIONS,
    )
    await consume_until(consumer, lambda: len(received) == 1)

    message = received[0]
    assert message.topic == "marketdata.bars.v1"
    assert message.key == "AAPL"
    assert message.value == sent
    assert message.envelope.message_id == sent.envelope.message_id
    assert message.headers["message_type"] == b"trading.marketdata.v1.Bar"
    assert message.headers["correlation_id"] == sent.envelope.correlation_id.encode()
    assert message.headers["traceparent"].decode().split("-")[1] == f"{producer_trace_id:032x}"
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        assert seen_trace_ids == [producer_trace_id]


async def test_wrong_message_type_for_a_topic_is_refused(kafka_bootstrap: str, topic_namespace: str) -> None:
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        with pytest.raises(MessageTypeError, match="marketdata.bars.v1 carries trading.marketdata.v1.Bar"):
            await publisher.publish("marketdata.bars.v1", risk_pb2.RiskDecision(envelope=new_envelope("t")), "k")


async def test_poison_message_goes_to_dead_letters_and_consumer_carries_on(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1", "marketdata.bars.v1.dlq"], namespace=topic_namespace)
    physical = topic_namespace + "marketdata.bars.v1"
    good_after = bar(close=103.0)
    rejected = bar(symbol="REJECT")
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        # A record that is not a Bar at all, straight on the wire.
        await publisher._producer.send_and_wait(physical, b"\xff\xfe not protobuf", key=b"AAPL")
        await publisher.publish("marketdata.bars.v1", rejected, key="REJECT")
        await publisher.publish("marketdata.bars.v1", good_after, key="AAPL")

    handled: list[ConsumedMessage] = []

    async def handler(message: ConsumedMessage) -> None:
        if message.value.symbol == "REJECT":  # type: ignore[attr-defined]
            raise PermanentError("symbol REJECT is not tradable", reason_code="validation_error")
        handled.append(message)

    consumer = Consumer(
        kafka_bootstrap,
        f"{topic_namespace}g",
        ["marketdata.bars.v1"],
        handler,
        namespace=topic_namespace,
        group_options=FAST_GROUP_OPTIONS,
    )
    await consume_until(consumer, lambda: len(handled) == 1 and consumer.dead_lettered == 2)
    assert handled[0].value == good_after

    dead = await collect(kafka_bootstrap, topic_namespace, "marketdata.bars.v1.dlq", 2)
    letters = sorted((m.value for m in dead), key=lambda d: d.reason_code)  # type: ignore[attr-defined]
    assert [d.reason_code for d in letters] == ["decode_error", "validation_error"]  # type: ignore[attr-defined]
    assert letters[0].value == b"\xff\xfe not protobuf"  # type: ignore[attr-defined]
    assert letters[0].source_topic == physical  # type: ignore[attr-defined]
    assert "not a trading.marketdata.v1.Bar" in letters[0].reason  # type: ignore[attr-defined]
    assert letters[1].reason == "symbol REJECT is not tradable"  # type: ignore[attr-defined]
    assert isinstance(letters[1], common_pb2.DeadLetter)


async def test_transient_errors_are_retried_then_handled(kafka_bootstrap: str, topic_namespace: str) -> None:
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        await publisher.publish("marketdata.bars.v1", bar(), key="AAPL")
    attempts: list[int] = []

    async def flaky(message: ConsumedMessage) -> None:
        attempts.append(message.offset)
        if len(attempts) < 3:
            raise ConnectionError("downstream briefly unavailable")

    consumer = Consumer(
        kafka_bootstrap,
        f"{topic_namespace}g",
        ["marketdata.bars.v1"],
        flaky,
        namespace=topic_namespace,
        retry_initial_s=0.01,
        group_options=FAST_GROUP_OPTIONS,
    )
    await consume_until(consumer, lambda: consumer.handled == 1)
    assert len(attempts) == 3
    assert consumer.dead_lettered == 0


CRASHING_CONSUMER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    import redis.asyncio as aioredis
    from trading_platform.messaging import Consumer, RedisIdempotencyStore

    bootstrap, redis_url, namespace = sys.argv[1:4]

    async def main():
        client = aioredis.from_url(redis_url)
        store = RedisIdempotencyStore(client, namespace)

        async def handler(message):
            # The effect and the handled-mark are written atomically; then the process dies before the commit.
            async with client.pipeline(transaction=True) as pipe:
                pipe.rpush(namespace + ":effects", message.envelope.message_id)
                pipe.set(store.key(message.envelope.message_id), b"1")
                await pipe.execute()
            os.kill(os.getpid(), signal.SIGKILL)

        consumer = Consumer(bootstrap, namespace + "g", ["marketdata.bars.v1"], handler,
                            namespace=namespace, idempotency=store,
                            group_options={"session_timeout_ms": 2000, "heartbeat_interval_ms": 200,
                                           "rebalance_timeout_ms": 1000})
        await consumer.run_forever()

    asyncio.run(main())
    """
)


async def test_consumer_killed_before_commit_gets_message_again_and_handles_it_once(
    kafka_bootstrap: str, redis_url: str, topic_namespace: str
) -> None:
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    sent = bar()
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        await publisher.publish("marketdata.bars.v1", sent, key="AAPL")

    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_CONSUMER, kafka_bootstrap, redis_url, topic_namespace
    )
    assert await asyncio.wait_for(child.wait(), 30) == -signal.SIGKILL

    client = aioredis.from_url(redis_url)
    store = RedisIdempotencyStore(client, topic_namespace)
    redelivered: list[str] = []
    original_seen = store.seen

    async def spy_seen(message_id: str) -> bool:
        redelivered.append(message_id)
        return await original_seen(message_id)

    store.seen = spy_seen  # type: ignore[method-assign]
    handled: list[ConsumedMessage] = []

    async def handler(message: ConsumedMessage) -> None:
        handled.append(message)

    consumer = Consumer(
        kafka_bootstrap,
        topic_namespace + "g",
        ["marketdata.bars.v1"],
        handler,
        namespace=topic_namespace,
        idempotency=store,
        group_options=FAST_GROUP_OPTIONS,
    )
    await consume_until(consumer, lambda: consumer.duplicates_skipped == 1)

    assert redelivered == [sent.envelope.message_id]  # it came back: the crash was before the commit
    assert handled == []  # and was not handled a second time
    assert await client.lrange(topic_namespace + ":effects", 0, -1) == [sent.envelope.message_id.encode()]
    await client.aclose()


async def test_replay_reads_a_topic_from_the_beginning_to_its_end(kafka_bootstrap: str, topic_namespace: str) -> None:
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    sent = [bar(symbol=s, close=100.0 + i) for i, s in enumerate(["AAPL", "MSFT", "IBM", "AAPL"])]
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        for message in sent:
            await publisher.publish("marketdata.bars.v1", message, key=message.symbol)
    replayed = [m.value async for m in replay(kafka_bootstrap, "marketdata.bars.v1", namespace=topic_namespace)]
    assert sorted(m.envelope.message_id for m in replayed) == sorted(m.envelope.message_id for m in sent)
    aapl = [m.close for m in replayed if m.symbol == "AAPL"]  # type: ignore[attr-defined]
    assert aapl == [100.0, 103.0]  # order per key holds


async def test_shadow_publisher_writes_to_shadow_topics(kafka_bootstrap: str, topic_namespace: str) -> None:
    await ensure_topics(kafka_bootstrap, ["signal.signals.v1"], namespace=topic_namespace, shadow=True)
    from trading.signal.v1 import signal_pb2

    signal_message = signal_pb2.SignalGenerated(envelope=new_envelope("signal"), symbol="AAPL", target_weight=0.1)
    async with Publisher(kafka_bootstrap, "signal", namespace=topic_namespace, shadow=True) as publisher:
        await publisher.publish("signal.signals.v1", signal_message, key="AAPL")
    shadow = await collect(kafka_bootstrap, topic_namespace, "shadow.signal.signals.v1", 1)
    assert shadow[0].value == signal_message
    live = [m async for m in replay(kafka_bootstrap, "signal.signals.v1", namespace=topic_namespace)]
    assert live == []


async def test_concurrent_keys_keep_each_key_in_order_and_do_not_wait_for_each_other(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    symbols = [f"S{i}" for i in range(12)]  # spread over the topic's 3 partitions
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        for step in range(5):
            for symbol in symbols:
                await publisher.publish("marketdata.bars.v1", bar(symbol, close=100.0 + step), key=symbol)
    handled: list[tuple[str, float, int]] = []
    in_flight = [0, 0]  # now, most at once

    async def handler(message: ConsumedMessage) -> None:
        value = message.value
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        await asyncio.sleep(0.01)  # a handler that waits (an RPC, an acked publish)
        in_flight[0] -= 1
        handled.append((value.symbol, value.close, message.partition))  # type: ignore[attr-defined]

    consumer = Consumer(
        kafka_bootstrap,
        f"{topic_namespace}fan",
        ["marketdata.bars.v1"],
        handler,
        namespace=topic_namespace,
        group_options=FAST_GROUP_OPTIONS,
        concurrent_keys=True,
    )
    await consume_until(consumer, lambda: len(handled) >= 60)
    for symbol in symbols:  # each key in its order
        assert [close for s, close, _ in handled if s == symbol] == [100.0 + step for step in range(5)]
    # Keys were handled at the same time, more of them than there are partitions (sequential handling never exceeds
    # 1, and one lane per partition never exceeds 3).
    assert in_flight[1] > 3


async def test_lanes_commit_only_up_to_the_first_unhandled_record_and_a_slow_key_holds_up_only_itself() -> None:
    """Key lanes (Consumer(concurrent_keys=True)): a slow record holds up its own key, not the others, nor records
    fetched later; a partition commits only the run of handled records from its oldest outstanding one, so a stop
    redelivers everything after a gap."""
    p0, p1 = TopicPartition("t", 0), TopicPartition("t", 1)
    release = {key: asyncio.Event() for key in (b"A", b"B", b"C")}
    handled: list[tuple[int, int]] = []
    stopping = False

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        await release[record.key].wait()  # type: ignore[index]
        handled.append((record.partition, record.offset))

    def rec(partition: TopicPartition, offset: int, key: bytes) -> ConsumerRecord[bytes, bytes]:
        return ConsumerRecord(partition.topic, partition.partition, offset, 0, 0, key, b"", None, 0, 0, [])

    lanes = _Lanes(handle, lambda: stopping, max_in_flight=100)
    lanes.add({p0: [rec(p0, 10, b"A"), rec(p0, 11, b"B"), rec(p0, 12, b"A")], p1: [rec(p1, 5, b"C")]})
    lanes.add({p0: [rec(p0, 13, b"B")], p1: [rec(p1, 6, b"C")]})  # a later fetch, while the first is in flight
    assert lanes.in_flight == 6
    release[b"A"].set()
    release[b"C"].set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert sorted(handled) == [(0, 10), (0, 12), (1, 5), (1, 6)]  # B is slow; A and C went on, later fetch too
    assert lanes.committable() == {p0: 11, p1: 7}  # 11 (B) is outstanding: 12 is handled but not committed yet
    stopping = True  # stop while B waits: B finishes 11, then its lane stops before 13
    release[b"B"].set()
    await lanes.drain()
    assert (0, 13) not in handled
    assert lanes.committable() == {p0: 13}  # 11 and 12 now; 13 stays for redelivery
    assert lanes.in_flight == 1


async def test_a_failing_lane_stops_the_consumer_loop_and_commits_nothing_after_it() -> None:
    p0 = TopicPartition("t", 0)

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.offset == 1:
            raise ConnectionError("idempotency store down")

    lanes = _Lanes(handle, lambda: False, max_in_flight=10)
    lanes.add({p0: [ConsumerRecord("t", 0, o, 0, 0, b"K", b"", None, 0, 0, []) for o in range(3)]})
    await lanes.drain()
    with pytest.raises(ConnectionError, match="idempotency store down"):
        lanes.raise_failure()
    assert lanes.committable() == {p0: 1}


async def test_doorbell_consumer_sleeps_until_rung_and_drains_what_arrives_while_it_works(
    kafka_bootstrap: str, redis_url: str, topic_namespace: str
) -> None:
    """Doorbell mode: while idle the partitions are paused (nothing is fetched, however long we wait, because the idle
    poll is an hour); a ring after a publish wakes the consumer; records published while it works are handled in the
    same hot spell, each key in order."""
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    handled: list[tuple[str, float]] = []

    async def handler(message: ConsumedMessage) -> None:
        await asyncio.sleep(0.03)  # slower than the hot window: later records arrive while this one is handled
        handled.append((message.value.symbol, message.value.close))  # type: ignore[attr-defined]

    consumer = Consumer(
        kafka_bootstrap,
        f"{topic_namespace}bell",
        ["marketdata.bars.v1"],
        handler,
        namespace=topic_namespace,
        group_options={**FAST_GROUP_OPTIONS, "fetch_max_wait_ms": 1},
        doorbell_url=redis_url,
        idle_poll_ms=3_600_000,
        hot_window_ms=10,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(20):  # joined the group and asleep: the first wake-up found nothing
            while not consumer._consumer.assignment() or not consumer._consumer.paused():
                await asyncio.sleep(0.02)
        async with Publisher(kafka_bootstrap, "silent", namespace=topic_namespace) as silent:
            await silent.publish("marketdata.bars.v1", bar("AAPL", 1.0), key="AAPL")  # no doorbell: no ring
        await asyncio.sleep(1.5)
        assert handled == []  # asleep: a record without a ring waits for the (hour-long) idle poll
        async with Publisher(kafka_bootstrap, "ringer", namespace=topic_namespace, doorbell_url=redis_url) as ringer:
            for step in range(2, 6):
                for symbol in ("AAPL", "MSFT", "IBM"):
                    await ringer.publish("marketdata.bars.v1", bar(symbol, float(step)), key=symbol)
            assert ringer.doorbell is not None and ringer.doorbell.rings == 12
        async with asyncio.timeout(20):
            while len(handled) < 13:
                await asyncio.sleep(0.02)
    finally:
        await consumer.stop()
        await task
        await consumer.close()
    assert [close for symbol, close in handled if symbol == "AAPL"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    for symbol in ("MSFT", "IBM"):
        assert [close for s, close in handled if s == symbol] == [2.0, 3.0, 4.0, 5.0]


async def test_replay_returns_every_record_of_a_pipelined_batch(kafka_bootstrap: str, topic_namespace: str) -> None:
    """Records sent without waiting for each ack travel in one record batch per partition; the embedded broker
    reports such a partition's end as the batch's base offset + 1. Replay still returns all of them."""
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        deliveries = [await publisher.send("marketdata.bars.v1", bar("AAPL", float(i)), key="AAPL") for i in range(8)]
        await asyncio.gather(*deliveries)
    replayed = [m async for m in replay(kafka_bootstrap, "marketdata.bars.v1", namespace=topic_namespace)]
    assert [m.value.close for m in replayed] == [float(i) for i in range(8)]  # type: ignore[attr-defined]


async def test_a_join_that_goes_unanswered_fails_the_start_naming_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded broker can leave a group join unanswered for good (see Consumer._join): the start is logged and
    then fails with the group's name instead of hanging unseen. The broker's side is replaced by a join that never
    returns; everything else is the real consumer."""
    monkeypatch.setattr("trading_platform.messaging.JOIN_WAITS", 2)

    async def handler(message: ConsumedMessage) -> None:
        pass

    consumer = Consumer("127.0.0.1:9", "stuck-group", ["marketdata.bars.v1"], handler)
    consumer.join_timeout_s = 0.05
    never = asyncio.get_running_loop().create_future()
    monkeypatch.setattr(consumer._consumer, "start", lambda: never)
    monkeypatch.setattr(consumer.publisher, "start", lambda: asyncio.sleep(0))
    with pytest.raises(ConsumerJoinError, match="'stuck-group' got no partitions in 0 s"):
        await consumer.start()
    assert never.cancelled()


async def test_settling_a_revoked_partition_leaves_the_others_commit_points_alone() -> None:
    p0, p1 = TopicPartition("t", 0), TopicPartition("t", 1)
    stopping = False
    release = asyncio.Event()

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.key == b"slow":
            await release.wait()

    lanes = _Lanes(handle, lambda: stopping, max_in_flight=10)
    lanes.add({p0: [ConsumerRecord("t", 0, o, 0, 0, b"K", b"", None, 0, 0, []) for o in range(3)]})
    lanes.add({p1: [ConsumerRecord("t", 1, 7, 0, 0, b"slow", b"", None, 0, 0, [])]})
    for _ in range(10):
        await asyncio.sleep(0)
    settling = asyncio.create_task(lanes.settle({p1}))  # p1 is revoked while its record is in flight
    await asyncio.sleep(0)
    release.set()
    assert await settling == {p1: 8}
    assert lanes.committable() == {p0: 3}  # p0's handled records are still committed by the loop
    assert lanes.in_flight == 0
