"""What one bus hop costs on the embedded broker, by how the consumer waits for records: polling with a given
fetch_max_wait_ms, or asleep until a publisher rings it (doorbell mode, trading_platform.messaging).

Publisher and consumer are separate processes, as the services are. For each mode: the hop (the message's ts_init
to the consumer's handler, 100 messages at random 20-80 ms gaps, so that publishing cannot fall into step with the
polls), and the CPU the consumer and the broker use while nothing is published. Also the acked publish on an idle broker, the floor under every hop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from trading.marketdata.v1 import marketdata_pb2
from trading_platform.devstack import DevStack, StackPorts, free_port
from trading_platform.envelope import new_envelope
from trading_platform.messaging import ConsumedMessage, Consumer, Publisher, ensure_topics

from tests.benchmarks.stats import latency_summary, write_results

MESSAGES = 100
GAP_S = (0.02, 0.08)
IDLE_S = 5.0
MODES = {"poll_1ms": (False, 1), "poll_5ms": (False, 5), "poll_50ms": (False, 50), "doorbell_1ms": (True, 1)}
# BENCH_MODES=doorbell_1ms,poll_5ms measures only those (figures then go to broker_wakeups_<modes>.json)
CHOSEN = [m for m in os.environ.get("BENCH_MODES", "").split(",") if m]


def consume(bootstrap: str, redis_url: str, namespace: str, doorbell: bool, wait_ms: int, out: Any) -> None:
    async def run() -> None:
        latencies: list[int] = []

        async def handler(message: ConsumedMessage) -> None:
            latencies.append(time.time_ns() - message.value.envelope.ts_init)

        consumer = Consumer(
            bootstrap,
            "bench",
            ["marketdata.bars.v1"],
            handler,
            namespace=namespace,
            doorbell_url=redis_url if doorbell else None,
            group_options={"fetch_max_wait_ms": wait_ms, "heartbeat_interval_ms": 500},
        )
        await consumer.start()
        task = asyncio.create_task(consumer.run())
        while not consumer._consumer.assignment():
            await asyncio.sleep(0.05)
        out.put("ready")
        process = psutil.Process()
        before = sum(process.cpu_times()[:2])
        await asyncio.sleep(IDLE_S)
        out.put(100 * (sum(process.cpu_times()[:2]) - before) / IDLE_S)
        while len(latencies) < MESSAGES:
            await asyncio.sleep(0.05)
        out.put(latencies)
        await consumer.stop()
        await task
        await consumer.close()

    asyncio.run(run())


async def publish_all(bootstrap: str, redis_url: str, namespace: str, doorbell: bool) -> list[int]:
    acks = []
    gaps = random.Random(7)
    async with Publisher(
        bootstrap, "bench", namespace=namespace, doorbell_url=redis_url if doorbell else None
    ) as publisher:
        for i in range(MESSAGES):
            bar = marketdata_pb2.Bar(envelope=new_envelope("bench"), symbol="AAPL", close=float(i))
            started = time.perf_counter_ns()
            await publisher.publish("marketdata.bars.v1", bar, key="AAPL")
            acks.append(time.perf_counter_ns() - started)
            await asyncio.sleep(gaps.uniform(*GAP_S))
    return acks


def main() -> None:
    stack = DevStack(Path(tempfile.mkdtemp()), StackPorts(free_port(), free_port(), free_port()))
    endpoints = stack.up()
    broker = next(p for p in psutil.process_iter(["cmdline"]) if "tansu" in " ".join(p.info["cmdline"] or []))
    figures: dict[str, Any] = {}
    context = multiprocessing.get_context("spawn")
    try:
        for mode, (doorbell, wait_ms) in MODES.items():
            if CHOSEN and mode not in CHOSEN:
                continue
            namespace = f"bench{time.time_ns()}."
            asyncio.run(ensure_topics(endpoints.kafka_bootstrap, ["marketdata.bars.v1"], namespace=namespace))
            out = context.Queue()
            args = (endpoints.kafka_bootstrap, endpoints.redis_url, namespace, doorbell, wait_ms, out)
            process = context.Process(target=consume, args=args)
            process.start()
            assert out.get(timeout=60) == "ready"
            broker_before = sum(broker.cpu_times()[:2])
            consumer_cpu = out.get(timeout=60)
            broker_cpu = 100 * (sum(broker.cpu_times()[:2]) - broker_before) / IDLE_S
            acks = asyncio.run(publish_all(endpoints.kafka_bootstrap, endpoints.redis_url, namespace, doorbell))
            latencies = out.get(timeout=60)
            process.join(30)
            figures[mode] = {
                "hop_ts_init_to_handler": latency_summary(latencies),
                "idle_cpu_percent": {"consumer": round(consumer_cpu, 1), "broker": round(broker_cpu, 1)},
            }
            figures.setdefault("acked_publish", latency_summary(acks))
            print(mode, figures[mode], flush=True)
    finally:
        stack.down()
    figures["note"] = (
        f"{MESSAGES} messages at random 20-80 ms gaps, publisher and consumer in separate processes; idle CPU "
        f"over {IDLE_S:.0f} s with nothing published (100 = one core)"
    )
    write_results("broker_wakeups" + "".join(f"_{m}" for m in CHOSEN), figures)


if __name__ == "__main__":
    main()
