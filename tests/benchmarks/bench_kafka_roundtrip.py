"""The bus on its own, on the dev stack's broker (Apache Kafka, one KRaft node, SASL/SCRAM as the admin principal):

- one bus hop across processes (`bus_hop`): the platform's Publisher (idempotent, acks=all) in this process, the
  platform's Consumer (a group member, commit after the handler, long poll) in another, from the message's
  `envelope.ts_init` to its handler, paced like the trading path's sparse messages. The trading-path benchmark
  runs the same probe against the running stack as the floor of each bus hop.
- an in-process round trip (publish acked, then consumed), the acked publish alone, and pipelined throughput.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from trading.marketdata.v1 import marketdata_pb2
from trading_platform.devstack import DevStack, StackPorts, free_port
from trading_platform.envelope import new_envelope
from trading_platform.messaging import ConsumedMessage, Consumer, KafkaConnection, Publisher, ensure_topics

from tests.benchmarks.stats import latency_summary, write_results

HOP_TOPIC = "marketdata.bars.v1"  # the bus carries registry types only; the probe's topic lives in its own namespace
HOP_ENV = "BENCH_HOP_CONNECTION"  # how the consumer process learns the connection (env, not argv: it has a password)
PROTOCOL = "bench-hop: "  # the consumer process's own lines on its stdout (anything else there is a log line)
REPO = Path(__file__).resolve().parents[2]
MESSAGES = 2_000
THROUGHPUT_MESSAGES = 20_000


def _bar(symbol: str, close: float = 1.0) -> marketdata_pb2.Bar:
    return marketdata_pb2.Bar(envelope=new_envelope("bench"), symbol=symbol, close=close)


async def _consume_hops(connection: KafkaConnection, namespace: str, group_options: dict[str, int]) -> list[int]:
    """The consumer side of bus_hop (runs in its own process): ts_init -> handler of every HOP bar until STOP."""
    latencies: list[int] = []
    done = asyncio.Event()

    async def handler(message: ConsumedMessage) -> None:
        now = time.time_ns()
        bar: Any = message.value
        if bar.symbol == "HOP":
            latencies.append(now - bar.envelope.ts_init)
        elif bar.symbol == "STOP":
            done.set()

    consumer = Consumer(connection, "bench-hop", [HOP_TOPIC], handler, namespace=namespace, group_options=group_options)
    await consumer.start()
    print(f"{PROTOCOL}joined", flush=True)
    task = asyncio.create_task(consumer.run())
    await done.wait()
    await consumer.stop()
    await task
    await consumer.close()
    return latencies


def consumer_process() -> None:
    spec = json.loads(os.environ[HOP_ENV])
    connection = KafkaConnection(
        spec["bootstrap_servers"], spec["security_protocol"], spec.get("username"), spec.get("password")
    )
    latencies = asyncio.run(_consume_hops(connection, spec["namespace"], spec["group_options"]))
    print(PROTOCOL + json.dumps(latencies), flush=True)


async def _protocol_line(stream: asyncio.StreamReader) -> str:
    while line := (await stream.readline()).decode():
        if line.startswith(PROTOCOL):
            return line.removeprefix(PROTOCOL).strip()
    raise RuntimeError("the bus-hop consumer process ended early")


async def bus_hop(
    connection: KafkaConnection,
    seconds: float,
    *,
    interval_s: float = 0.02,
    fetch_max_wait_ms: int | None = None,
    transactional: bool = False,
) -> dict[str, Any]:
    """One bus hop, publisher here and consumer in another process, for `seconds`: one message every interval_s
    (each publish waits for its ack, as the services' do). Its own topic in a namespace of its own, ensured with the
    given (admin) connection. The consumer reads read_committed (the platform's default). `transactional`: each
    message in a transaction of its own with a consumer-group offset, as order-management sends a command (the hop
    then includes the commit, and `transaction_commit` times begin -> commit returned)."""
    namespace = f"bench-hop{'-txn' if transactional else ''}-{os.getpid()}-{time.time_ns() % 10**9}."
    await ensure_topics(connection, [HOP_TOPIC], namespace=namespace)
    group_options = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "rebalance_timeout_ms": 2000}
    if fetch_max_wait_ms is not None:
        group_options["fetch_max_wait_ms"] = fetch_max_wait_ms
    spec = {
        "bootstrap_servers": connection.bootstrap_servers,
        "security_protocol": connection.security_protocol,
        "username": connection.username,
        "password": connection.password,
        "namespace": namespace,
        "group_options": group_options,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.benchmarks.bench_kafka_roundtrip",
        "consume",
        cwd=REPO,
        env={**os.environ, HOP_ENV: json.dumps(spec)},
        stdout=asyncio.subprocess.PIPE,
        limit=2**24,  # the result is one line
    )
    assert child.stdout is not None
    ack_latency: list[int] = []
    commit_latency: list[int] = []
    transactional_id = f"{namespace}bench-hop" if transactional else None
    source = TopicPartition(namespace + HOP_TOPIC, 0)  # the offsets a transaction carries (any partition will do)
    try:
        if await asyncio.wait_for(_protocol_line(child.stdout), 60) != "joined":
            raise RuntimeError("bus-hop consumer did not join")
        async with Publisher(
            connection, "bench-hop", namespace=namespace, transactional_id=transactional_id
        ) as publisher:

            async def send(bar: marketdata_pb2.Bar, offset: int) -> None:
                if not transactional:
                    await publisher.publish(HOP_TOPIC, bar, key="HOP")
                    return
                async with publisher.transaction():
                    await publisher.publish(HOP_TOPIC, bar, key="HOP")
                    await publisher.send_offsets_to_transaction({source: offset}, f"{namespace}bench-hop-source")
                    ack_latency.append(time.time_ns() - bar.envelope.ts_init)
                commit_latency.append(time.time_ns() - bar.envelope.ts_init)

            for i in range(20):  # warm-up: connections, metadata, the first fetches
                await send(_bar("WARM"), i)
                await asyncio.sleep(interval_s)
            ack_latency.clear()
            commit_latency.clear()
            deadline = time.monotonic() + seconds
            next_send = time.monotonic()
            sent = 0
            while time.monotonic() < deadline:
                bar = _bar("HOP")
                await send(bar, sent)
                sent += 1
                if not transactional:
                    ack_latency.append(time.time_ns() - bar.envelope.ts_init)
                next_send += interval_s
                await asyncio.sleep(max(0.0, next_send - time.monotonic()))
            await send(_bar("STOP"), sent)
        hops = json.loads(await asyncio.wait_for(_protocol_line(child.stdout), 60))
    finally:
        if child.returncode is None:
            try:
                await asyncio.wait_for(child.wait(), 15)
            except TimeoutError:
                child.kill()
                await child.wait()
    figures: dict[str, Any] = {
        "publish_to_handler_other_process": latency_summary(hops),
        "publish_acked": latency_summary(ack_latency),
    }
    if transactional:
        figures["transaction_begin_to_committed"] = latency_summary(commit_latency)
    return figures | {
        "sent": len(ack_latency),
        "interval_ms": interval_s * 1000,
        "fetch_max_wait_ms": fetch_max_wait_ms or "service default",
    }


async def in_process(connection: KafkaConnection) -> dict[str, object]:
    namespace = f"bench-rt-{os.getpid()}."
    await ensure_topics(connection, ["marketdata.bars.v1"], namespace=namespace)
    latencies: list[int] = []
    received = asyncio.Event()

    async def handler(message: ConsumedMessage) -> None:
        latencies.append(time.time_ns() - message.value.envelope.ts_init)  # type: ignore[attr-defined]
        received.set()

    consumer = Consumer(
        connection,
        "bench",
        ["marketdata.bars.v1"],
        handler,
        namespace=namespace,
        group_options={"session_timeout_ms": 2000, "heartbeat_interval_ms": 200, "rebalance_timeout_ms": 1000},
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    async with Publisher(connection, "bench", namespace=namespace) as publisher:
        producer = publisher._producer
        # Warm-up until the group is joined.
        while not latencies:
            await publisher.publish("marketdata.bars.v1", _bar("AAPL"), key="AAPL")
            await asyncio.sleep(0.2)
        latencies.clear()
        for i in range(MESSAGES):
            received.clear()
            await publisher.publish("marketdata.bars.v1", _bar("AAPL", float(i)), key="AAPL")
            await received.wait()
        publish_latency = []
        for i in range(1_000):
            started = time.perf_counter_ns()
            await publisher.publish("marketdata.bars.v1", _bar("MSFT", float(i)), key="MSFT")
            publish_latency.append(time.perf_counter_ns() - started)
        await consumer.stop()
        await task
        await consumer.close()
        # Throughput: pipelined sends, one ack wait at the end.
        throughput_started = time.perf_counter()
        futures = [
            await producer.send(namespace + "marketdata.bars.v1", _bar("IBM", float(i)).SerializeToString(), key=b"IBM")
            for i in range(THROUGHPUT_MESSAGES)
        ]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - throughput_started
    return {
        "produce_to_consume_roundtrip_same_process": latency_summary(latencies),
        "publish_acked_latency": latency_summary(publish_latency),
        "pipelined_publish_throughput_msgs_per_s": round(THROUGHPUT_MESSAGES / elapsed),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as run_dir:
        stack = DevStack(Path(run_dir), StackPorts(free_port(), free_port(), free_port()))
        try:
            admin = stack.up().kafka_admin()
            figures: dict[str, Any] = {
                "bus_hop": asyncio.run(bus_hop(admin, 20.0)),
                # one message every 20 ms: back-to-back transactions (each commit takes longer than that)
                "bus_hop_transactional": asyncio.run(bus_hop(admin, 20.0, transactional=True)),
                # one every 200 ms: each transaction starts after the previous one's markers are written
                "bus_hop_transactional_sparse": asyncio.run(bus_hop(admin, 20.0, interval_s=0.2, transactional=True)),
            }
            figures.update(asyncio.run(in_process(admin)))
        finally:
            stack.down()
    figures["note"] = (
        "Apache Kafka 3.9.2 (one KRaft node, SASL/SCRAM, the admin principal) on loopback, otherwise idle stack; "
        "bus_hop: consumer in another process (read_committed), one message every 20 ms unless said otherwise; "
        "in-process: commit after every message"
    )
    write_results("kafka_roundtrip", figures)


if __name__ == "__main__":
    if sys.argv[1:] == ["consume"]:
        consumer_process()
    else:
        main()
