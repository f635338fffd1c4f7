"""Kafka round trip on the embedded broker: publish (acked) -> consumed by a group consumer, and publish throughput."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from trading.marketdata.v1 import marketdata_pb2
from trading_platform.devstack import DevStack, StackPorts, free_port
from trading_platform.envelope import new_envelope
from trading_platform.messaging import ConsumedMessage, Consumer, Publisher, ensure_topics

from tests.benchmarks.stats import latency_summary, write_results

MESSAGES = 2_000
THROUGHPUT_MESSAGES = 20_000


async def run(bootstrap: str) -> dict[str, object]:
    namespace = "bench."
    await ensure_topics(bootstrap, ["marketdata.bars.v1"], namespace=namespace)
    latencies: list[int] = []
    received = asyncio.Event()

    async def handler(message: ConsumedMessage) -> None:
        latencies.append(time.perf_counter_ns() - int(message.headers["sent_ns"]))
        received.set()

    consumer = Consumer(
        bootstrap,
        "bench",
        ["marketdata.bars.v1"],
        handler,
        namespace=namespace,
        group_options={"session_timeout_ms": 2000, "heartbeat_interval_ms": 200, "rebalance_timeout_ms": 1000},
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    async with Publisher(bootstrap, "bench", namespace=namespace) as publisher:
        producer = publisher._producer
        # Warm-up until the group is joined.
        while not latencies:
            bar = marketdata_pb2.Bar(envelope=new_envelope("bench"), symbol="AAPL", close=1.0)
            await producer.send_and_wait(
                namespace + "marketdata.bars.v1",
                bar.SerializeToString(),
                key=b"AAPL",
                headers=[("sent_ns", str(time.perf_counter_ns()).encode())],
            )
            await asyncio.sleep(0.2)
        latencies.clear()
        for i in range(MESSAGES):
            received.clear()
            bar = marketdata_pb2.Bar(envelope=new_envelope("bench"), symbol="AAPL", close=float(i))
            await producer.send_and_wait(
                namespace + "marketdata.bars.v1",
                bar.SerializeToString(),
                key=b"AAPL",
                headers=[("sent_ns", str(time.perf_counter_ns()).encode())],
            )
            await received.wait()
        publish_latency = []
        for i in range(1_000):
            bar = marketdata_pb2.Bar(envelope=new_envelope("bench"), symbol="MSFT", close=float(i))
            started = time.perf_counter_ns()
            await publisher.publish("marketdata.bars.v1", bar, key="MSFT")
            publish_latency.append(time.perf_counter_ns() - started)
        await consumer.stop()
        await task
        await consumer.close()
        # Throughput: pipelined sends, one ack wait at the end.
        started = time.perf_counter()
        futures = [
            await producer.send(
                namespace + "marketdata.bars.v1",
                marketdata_pb2.Bar(envelope=new_envelope("bench"), symbol="IBM", close=float(i)).SerializeToString(),
                key=b"IBM",
            )
            for i in range(THROUGHPUT_MESSAGES)
        ]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    return {
        "produce_to_consume_roundtrip": latency_summary(latencies),
        "publish_acked_latency": latency_summary(publish_latency),
        "pipelined_publish_throughput_msgs_per_s": round(THROUGHPUT_MESSAGES / elapsed),
        "note": "one consumer, commit after every message; Tansu broker with memory storage on loopback",
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as run_dir:
        stack = DevStack(Path(run_dir), StackPorts(free_port(), free_port(), free_port()))
        try:
            endpoints = stack.up()
            figures = asyncio.run(run(endpoints.kafka_bootstrap))
        finally:
            stack.down()
    write_results("kafka_roundtrip", figures)


if __name__ == "__main__":
    main()
