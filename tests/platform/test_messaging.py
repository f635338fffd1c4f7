"""Messaging over a real Kafka broker: envelope and trace context, dead letters, redelivery, idempotent and
transactional producers, the transactional consume loop, replay."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from trading.common.v1 import common_pb2
from trading.marketdata.v1 import marketdata_pb2
from trading.risk.v1 import risk_pb2
from trading.signal.v1 import signal_pb2
from trading_platform.envelope import new_envelope
from trading_platform.messaging import (
    BrokerUnavailableError,
    ConsumedMessage,
    Consumer,
    ConsumerJoinError,
    MessageTypeError,
    PermanentError,
    Publisher,
    RedisIdempotencyStore,
    ensure_topics,
    replay,
)
from trading_platform.messaging.connection import KafkaConnection
from trading_platform.messaging.lanes import KeyLanes
from trading_platform.sampling import sampler
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


def bars_consumer(kafka_bootstrap: str, namespace: str, handler: Callable[[ConsumedMessage], Any]) -> Consumer:
    return Consumer(
        kafka_bootstrap,
        f"{namespace}g",
        ["marketdata.bars.v1"],
        handler,
        namespace=namespace,
        group_options=FAST_GROUP_OPTIONS,
    )


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
    await consume_until(bars_consumer(kafka_bootstrap, topic_namespace, handler), lambda: len(received) == 1)

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


async def test_an_unrecorded_trace_passes_through_a_consumer_and_its_publishes_unchanged(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    """A bar whose trace was not sampled (TRADING_TELEMETRY__TRACE_SAMPLE_RATIO < 1 at its source): the consumer makes
    no span for it, the handler runs in the bar's own trace context, and what it publishes carries that trace with
    the same decision (the sampled flag off), so the whole chain stays unrecorded and costs no span."""
    tracer = TracerProvider(sampler=sampler(0.0)).get_tracer("test")
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1", "signal.signals.v1"], namespace=topic_namespace)
    async with Publisher(kafka_bootstrap, "market-data", namespace=topic_namespace) as publisher:
        with tracer.start_as_current_span("bar") as span:
            assert not span.is_recording()
            trace_id = span.get_span_context().trace_id
            await publisher.publish("marketdata.bars.v1", bar(), key="AAPL")

    seen: list[trace.SpanContext] = []

    async def handler(message: ConsumedMessage) -> None:
        seen.append(trace.get_current_span().get_span_context())
        signal = signal_pb2.SignalGenerated(symbol="AAPL", bar_id=message.envelope.message_id)
        signal.envelope.CopyFrom(new_envelope("signal", cause=message.value))
        await out.publish("signal.signals.v1", signal, key="AAPL")

    async with Publisher(kafka_bootstrap, "signal", namespace=topic_namespace) as out:
        await consume_until(bars_consumer(kafka_bootstrap, topic_namespace, handler), lambda: len(seen) == 1)
    assert seen[0].trace_id == trace_id and not seen[0].trace_flags.sampled
    (published,) = await collect(kafka_bootstrap, topic_namespace, "signal.signals.v1", 1)
    _version, header_trace, _, flags = published.headers["traceparent"].decode().split("-")
    assert header_trace == f"{trace_id:032x}" and not int(flags, 16) & 0x01  # the sampled flag stays off


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
    from_the_future = bar(close=104.0)
    from_the_future.envelope.schema_version = 99  # a producer newer than this consumer
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        # A record that is not a Bar at all, straight on the wire.
        await publisher._producer.send_and_wait(physical, b"\xff\xfe not protobuf", key=b"AAPL")
        await publisher.publish("marketdata.bars.v1", from_the_future, key="AAPL")
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
    await consume_until(consumer, lambda: len(handled) == 1 and consumer.dead_lettered == 3)
    assert handled[0].value == good_after

    dead = await collect(kafka_bootstrap, topic_namespace, "marketdata.bars.v1.dlq", 3)
    letters = sorted((m.value for m in dead), key=lambda d: d.reason_code)  # type: ignore[attr-defined]
    codes = [d.reason_code for d in letters]  # type: ignore[attr-defined]
    assert codes == ["decode_error", "unknown_schema_version", "validation_error"]
    assert "schema_version 99" in letters[1].reason  # type: ignore[attr-defined]
    letters = [letters[0], letters[2]]
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

    lanes = KeyLanes(handle, lambda: stopping, max_in_flight=100)
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

    lanes = KeyLanes(handle, lambda: False, max_in_flight=10)
    lanes.add({p0: [ConsumerRecord("t", 0, o, 0, 0, b"K", b"", None, 0, 0, []) for o in range(3)]})
    await lanes.drain()
    with pytest.raises(ConnectionError, match="idempotency store down"):
        lanes.raise_failure()
    assert lanes.committable() == {p0: 1}


async def test_replay_returns_every_record_of_a_pipelined_batch(kafka_bootstrap: str, topic_namespace: str) -> None:
    """Records sent without waiting for each ack travel in one record batch per partition: replay returns all of
    them, in order."""
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        deliveries = [await publisher.send("marketdata.bars.v1", bar("AAPL", float(i)), key="AAPL") for i in range(8)]
        await asyncio.gather(*deliveries)
    replayed = [m async for m in replay(kafka_bootstrap, "marketdata.bars.v1", namespace=topic_namespace)]
    assert [m.value.close for m in replayed] == [float(i) for i in range(8)]  # type: ignore[attr-defined]


async def test_a_join_that_goes_unanswered_fails_the_start_naming_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """A group join that goes unanswered (a group coordinator that never becomes available) is logged and then fails
    the start with the group's name instead of hanging unseen. The broker's side is replaced by a join that never
    returns; everything else is the real consumer."""
    monkeypatch.setattr("trading_platform.messaging.consumer.JOIN_WAITS", 2)

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

    lanes = KeyLanes(handle, lambda: stopping, max_in_flight=10)
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


def signal_for(message: ConsumedMessage) -> signal_pb2.SignalGenerated:
    envelope = new_envelope("signal", correlation_id=message.envelope.correlation_id)
    envelope.message_id = f"signal-of-{message.envelope.message_id}"  # deterministic: one output per input
    return signal_pb2.SignalGenerated(envelope=envelope, symbol=message.value.symbol, target_weight=0.1)  # type: ignore[attr-defined]


async def read_uncommitted(bootstrap: str, physical: str) -> int:
    """How many records the topic holds, aborted ones included."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_uncommitted", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        ids = await consumer._client._wait_on_metadata(physical)  # tracked, so a metadata refresh keeps it
        partitions = [TopicPartition(physical, p) for p in sorted(ids)]
        assert partitions
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        count = 0
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            count += sum(len(records) for records in batch.values())
            if not batch:
                return count
    finally:
        await consumer.stop()


async def test_publisher_is_idempotent_with_acks_from_all_replicas(kafka_bootstrap: str, topic_namespace: str) -> None:
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        sent = [bar("AAPL", float(i)) for i in range(3)]
        offsets = [await publisher.publish("marketdata.bars.v1", m, key="AAPL") for m in sent]
        txn = publisher._producer._txn_manager
        assert txn is not None and txn.has_pid()  # the broker gave it a producer id: sequence-numbered sends
        assert publisher._producer._sender._acks == -1  # acks="all"
    assert [o for _, o in offsets] == sorted(o for _, o in offsets)
    replayed = [m.value async for m in replay(kafka_bootstrap, "marketdata.bars.v1", namespace=topic_namespace)]
    assert replayed == sent


async def test_transactional_loop_commits_outputs_and_offsets_together_and_an_aborted_batch_is_redelivered(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    """Each batch is one transaction: outputs, dead letters and the consumed offsets. A handler that keeps failing
    aborts it: a read_committed reader sees none of the batch's outputs (they were written, then aborted), and the
    next consumer of the group gets the whole batch again."""
    topics = ["marketdata.bars.v1", "marketdata.bars.v1.dlq", "signal.signals.v1"]
    await ensure_topics(kafka_bootstrap, topics, namespace=topic_namespace)
    inputs = [bar("AAPL", 1.0), bar("AAPL", 2.0), bar("REJECT", 3.0), bar("AAPL", 4.0)]
    async with Publisher(kafka_bootstrap, "md", namespace=topic_namespace) as source:
        for message in inputs:  # one key: one partition, so the four arrive in one batch
            await source.publish("marketdata.bars.v1", message, key="AAPL")
    fail_on = {4.0}

    def consumer_of(publisher: Publisher) -> Consumer:
        async def handler(message: ConsumedMessage) -> None:
            if message.value.symbol == "REJECT":  # type: ignore[attr-defined]
                raise PermanentError("not tradable", reason_code="validation_error")
            if message.value.close in fail_on:  # type: ignore[attr-defined]
                raise ConnectionError("model server down")
            await publisher.publish("signal.signals.v1", signal_for(message), key="AAPL")

        return Consumer(
            kafka_bootstrap,
            f"{topic_namespace}signal",
            ["marketdata.bars.v1"],
            handler,
            publisher=publisher,
            namespace=topic_namespace,
            group_options=FAST_GROUP_OPTIONS,
            transactional=True,
            max_attempts=2,
            retry_initial_s=0.01,
        )

    txn_id = f"{topic_namespace}signal-0"
    async with Publisher(kafka_bootstrap, "signal", namespace=topic_namespace, transactional_id=txn_id) as first:
        consumer = consumer_of(first)
        await consumer.start()
        try:
            with pytest.raises(ConnectionError, match="model server down"):
                await asyncio.wait_for(consumer.run(), 30)
        finally:
            await consumer.close()
    outputs = topic_namespace + "signal.signals.v1"
    assert await read_uncommitted(kafka_bootstrap, outputs) == 2  # written, then aborted
    assert [m async for m in replay(kafka_bootstrap, "signal.signals.v1", namespace=topic_namespace)] == []
    assert [m async for m in replay(kafka_bootstrap, "marketdata.bars.v1.dlq", namespace=topic_namespace)] == []

    fail_on.clear()  # restarted: the whole batch comes again
    async with Publisher(kafka_bootstrap, "signal", namespace=topic_namespace, transactional_id=txn_id) as second:
        consumer = consumer_of(second)
        await consume_until(consumer, lambda: consumer.handled == 3 and consumer.dead_lettered == 1)
    signals = [m.value async for m in replay(kafka_bootstrap, "signal.signals.v1", namespace=topic_namespace)]
    assert [s.envelope.message_id for s in signals] == [
        f"signal-of-{m.envelope.message_id}" for m in inputs if m.symbol == "AAPL"
    ]
    dead = [m.value async for m in replay(kafka_bootstrap, "marketdata.bars.v1.dlq", namespace=topic_namespace)]
    assert [d.reason_code for d in dead] == ["validation_error"]  # type: ignore[attr-defined]

    checker = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=f"{topic_namespace}signal")
    await checker.start()
    try:
        physical = topic_namespace + "marketdata.bars.v1"
        committed = {p: await checker.committed(TopicPartition(physical, p)) for p in range(3)}
        assert sorted(committed.values(), key=str) == [4, None, None]  # offsets were committed with the outputs
    finally:
        await checker.stop()


async def test_transactional_loop_with_key_lanes_and_a_manual_publish_between_batches(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    """concurrent_keys in the transactional loop: each key in order, the batch waited for as a whole; meanwhile
    another code path publishes on the same transactional publisher (its own short transaction, between batches)."""
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1", "signal.signals.v1"], namespace=topic_namespace)
    symbols = [f"S{i}" for i in range(6)]
    async with Publisher(kafka_bootstrap, "md", namespace=topic_namespace) as source:
        for step in range(3):
            for symbol in symbols:
                await source.publish("marketdata.bars.v1", bar(symbol, float(step)), key=symbol)
    handled: list[tuple[str, float]] = []
    async with Publisher(
        kafka_bootstrap, "signal", namespace=topic_namespace, transactional_id=f"{topic_namespace}lanes-0"
    ) as publisher:

        async def handler(message: ConsumedMessage) -> None:
            await asyncio.sleep(0.005)
            await publisher.publish("signal.signals.v1", signal_for(message), key=message.key or "")
            handled.append((message.value.symbol, message.value.close))  # type: ignore[attr-defined]

        consumer = Consumer(
            kafka_bootstrap,
            f"{topic_namespace}lanes",
            ["marketdata.bars.v1"],
            handler,
            publisher=publisher,
            namespace=topic_namespace,
            group_options=FAST_GROUP_OPTIONS,
            transactional=True,
            concurrent_keys=True,
        )
        manual = signal_pb2.SignalGenerated(envelope=new_envelope("operator"), symbol="MANUAL", target_weight=0.0)

        async def manual_publish() -> None:
            await asyncio.sleep(0.05)
            await publisher.publish("signal.signals.v1", manual, key="MANUAL")  # a transaction of its own

        publishing = asyncio.create_task(manual_publish())
        await consume_until(consumer, lambda: len(handled) == 18 and publishing.done())
        await publishing
    for symbol in symbols:
        assert [close for s, close in handled if s == symbol] == [0.0, 1.0, 2.0]
    signals = [m.value async for m in replay(kafka_bootstrap, "signal.signals.v1", namespace=topic_namespace)]
    assert len(signals) == 19 and manual in signals


async def test_replay_stops_at_the_end_captured_when_it_started(kafka_bootstrap: str, topic_namespace: str) -> None:
    """Records published after the replay started are not part of it; transaction markers (a transactional
    producer's records) do not keep it waiting."""
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    before = [bar("AAPL", float(i)) for i in range(3)]
    async with Publisher(
        kafka_bootstrap, "test", namespace=topic_namespace, transactional_id=f"{topic_namespace}replay"
    ) as publisher:
        for message in before:  # each in a transaction of its own: a commit marker after each record
            await publisher.publish("marketdata.bars.v1", message, key="AAPL")
        records = replay(kafka_bootstrap, "marketdata.bars.v1", namespace=topic_namespace, timeout_s=10)
        first = await anext(records)  # the replay has started: its end offsets are captured
        for i in range(3, 6):
            await publisher.publish("marketdata.bars.v1", bar("AAPL", float(i)), key="AAPL")
        rest = [m async for m in records]
    assert [m.value for m in [first, *rest]] == before


async def test_an_unreachable_bootstrap_fails_the_start_naming_the_address() -> None:
    started = time.monotonic()
    publisher = Publisher("127.0.0.1:9", "test", start_timeout_s=1.0)
    with pytest.raises(BrokerUnavailableError, match=r"Kafka at 127\.0\.0\.1:9 did not answer within 1 s"):
        await publisher.start()
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1:9"):
        await ensure_topics("127.0.0.1:9", ["marketdata.bars.v1"], start_timeout_s=0.5)

    async def handler(message: ConsumedMessage) -> None:
        pass

    consumer = Consumer("127.0.0.1:9", "g", ["marketdata.bars.v1"], handler, start_timeout_s=0.5)
    consumer.publisher.start_timeout_s = 0.5
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1:9"):
        await consumer.start()
    assert time.monotonic() - started < 15


async def test_stop_wakes_a_consumer_waiting_for_data(kafka_bootstrap: str, topic_namespace: str) -> None:
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)

    async def handler(message: ConsumedMessage) -> None:
        pass

    consumer = Consumer(
        kafka_bootstrap,
        f"{topic_namespace}idle",
        ["marketdata.bars.v1"],
        handler,
        namespace=topic_namespace,
        group_options={**FAST_GROUP_OPTIONS, "fetch_max_wait_ms": 500},
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await consumer.stop()
    assert time.monotonic() - started < 0.3
    await task
    await consumer.close()


async def test_ensure_topics_takes_compaction_from_the_registry_and_replication_from_the_cluster(
    kafka_connection: KafkaConnection, topic_namespace: str
) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource
    from trading_platform.topics import replication

    assert replication(1) == (1, 1) and replication(3) == (3, 2) and replication(5) == (3, 2)
    created = await ensure_topics(kafka_connection, ["oms.positions.v1", "oms.events.v1"], namespace=topic_namespace)
    assert sorted(created) == [topic_namespace + "oms.events.v1", topic_namespace + "oms.positions.v1"]
    admin = AdminClient(kafka_connection.librdkafka_config())
    wanted = [
        ConfigResource(ConfigResource.Type.TOPIC, topic_namespace + n) for n in ("oms.positions.v1", "oms.events.v1")
    ]
    for _ in range(50):  # the new topics reach the broker's metadata a moment after their creation is acknowledged
        try:
            configs = {r.name: c.result(timeout=10) for r, c in admin.describe_configs(wanted).items()}
            break
        except Exception:
            await asyncio.sleep(0.1)
    positions, events = configs[topic_namespace + "oms.positions.v1"], configs[topic_namespace + "oms.events.v1"]
    assert positions["cleanup.policy"].value == "compact,delete"  # the latest position per symbol is always kept
    assert events["cleanup.policy"].value == "delete" and events["retention.ms"].value == "-1"
    assert positions["min.insync.replicas"].value == "1"  # what a one-node cluster supports
    assert await ensure_topics(kafka_connection, ["oms.positions.v1"], namespace=topic_namespace) == []


async def test_a_start_bounded_by_time_reads_only_the_recent_window(kafka_bootstrap: str, topic_namespace: str) -> None:
    """replay(since_ms=...) and Consumer(start_at_ms=...) begin at the first record at or after a time, not at the
    topic's beginning: a start whose cost is a window, not the whole history."""
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    old, recent = bar(close=90.0), bar(close=110.0)
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        await publisher.publish("marketdata.bars.v1", old, key="AAPL")
        await asyncio.sleep(0.2)
        cut_ms = time.time_ns() // 1_000_000
        await asyncio.sleep(0.05)
        await publisher.publish("marketdata.bars.v1", recent, key="AAPL")

    everything = [m.value async for m in replay(kafka_bootstrap, "marketdata.bars.v1", namespace=topic_namespace)]
    assert everything == [old, recent]
    window = [
        m.value async for m in replay(kafka_bootstrap, "marketdata.bars.v1", namespace=topic_namespace, since_ms=cut_ms)
    ]
    assert window == [recent]
    later = [
        m
        async for m in replay(
            kafka_bootstrap, "marketdata.bars.v1", namespace=topic_namespace, since_ms=cut_ms + 60_000
        )
    ]
    assert later == []

    handled: list[ConsumedMessage] = []

    async def handler(message: ConsumedMessage) -> None:
        handled.append(message)

    consumer = Consumer(
        kafka_bootstrap,
        f"{topic_namespace}windowed",
        ["marketdata.bars.v1"],
        handler,
        namespace=topic_namespace,
        group_options=FAST_GROUP_OPTIONS,
        start_at_ms=lambda: cut_ms,
    )
    await consume_until(consumer, lambda: len(handled) >= 1)
    await asyncio.sleep(0.3)
    assert [m.value for m in handled] == [recent]
