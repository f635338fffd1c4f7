"""faust-streaming, which the analytics stream apps will use, runs on the pinned broker (Apache Kafka 3.9.2) with the
pinned aiokafka: an agent consumes a topic, keeps a table (faust creates its changelog topic), and produces."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration


async def test_a_faust_agent_with_a_table_consumes_and_produces(
    kafka_bootstrap: str, topic_namespace: str, tmp_path: Path
) -> None:
    source, sink = topic_namespace + "faust-in", topic_namespace + "faust-out"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # the broker creates no topic by itself (auto.create.topics.enable=false)
        await admin.create_topics([NewTopic(source, 1, 1), NewTopic(sink, 1, 1)])
    finally:
        await admin.close()
    app = faust.App(
        f"{topic_namespace}faust-check",
        broker=f"kafka://{kafka_bootstrap}",
        store="memory://",
        datadir=str(tmp_path / "faust"),  # faust writes table state here; never into the working directory
        web_enabled=False,
        topic_replication_factor=1,
        topic_partitions=1,
        consumer_auto_offset_reset="earliest",
    )
    counts = app.Table("counts", default=int, partitions=1)
    out = app.topic(sink, value_serializer="raw")

    @app.agent(app.topic(source, value_serializer="raw"))
    async def double(stream: faust.Stream) -> None:
        async for value in stream:
            counts["seen"] += 1
            await out.send(value=value * 2)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    consumer = AIOKafkaConsumer(sink, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await app.start()
    await producer.start()
    await consumer.start()
    try:
        for value in (b"a", b"b", b"c"):
            await producer.send_and_wait(source, value)
        received: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(received) < 3 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                received += [r.value for r in records if r.value is not None]
        assert received == [b"aa", b"bb", b"cc"]
        assert counts["seen"] == 3
    finally:
        await consumer.stop()
        await producer.stop()
        await app.stop()
        await asyncio.sleep(0)
