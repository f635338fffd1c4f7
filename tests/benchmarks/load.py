"""Shared parts of the load benchmarks (bench_load_marketdata, bench_order_storm): a platform started with only the
services a benchmark drives, the paper exchange's clock driven at a rate, reading whole topics fast with librdkafka
(confluent-kafka, the admin principal), consumer lag, and the resident memory of each service."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from confluent_kafka import Consumer, TopicPartition
from paper_exchange.testing import admin_headers, stack_admin_key
from tradectl.stack import Platform
from trading_platform.devstack import DevStackError, Endpoints
from trading_platform.messaging import KafkaConnection


def admin_key(endpoints: Endpoints) -> str:
    """The dev stack's paper-exchange admin key (from its Vault): every /admin call carries it."""
    return stack_admin_key(endpoints.vault_addr, endpoints.vault_token())


def start(platform: Platform, services: tuple[str, ...], timeout_s: float = 90.0) -> Endpoints:
    """The embedded stack, the paper exchange and the named services (in the platform's start order)."""
    endpoints = platform.stack.up(timeout_s=180)  # a busy machine starts the broker slowly
    platform.exchange_up(endpoints, timeout_s=120)
    platform.seed_model_registry()
    for spec in platform.services:
        if spec.name in services:
            state = platform.start_service(spec.name, endpoints, timeout_s)
            if state != "SERVING":
                raise DevStackError(f"{spec.name} is {state}:\n{platform.process(spec.name).log_tail(30)}")
    return endpoints


class Clock(threading.Thread):
    """Advances the paper exchange's replay one simulated minute every `interval_s` (it runs with --speed 0) and
    counts the minutes; an advance slower than the interval (the exchange blocked on a slow stream reader) is not
    caught up by bursting."""

    def __init__(self, url: str, admin_key: str, interval_s: float) -> None:
        super().__init__(daemon=True, name="bench-clock")
        self.url, self.admin_key, self.interval_s = url, admin_key, interval_s
        self.halt = threading.Event()
        self.minutes = 0

    def run(self) -> None:
        next_step = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=60, headers=admin_headers(self.admin_key)) as client:
            while not self.halt.is_set():
                if client.post("/admin/advance", params={"minutes": 1}).json().get("finished"):
                    return
                self.minutes += 1
                next_step = max(next_step + self.interval_s, time.monotonic() - self.interval_s)
                self.halt.wait(max(0.0, next_step - time.monotonic()))

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=60)


def read_topic(connection: KafkaConnection, topic: str, handle: Callable[[bytes | None, bytes | None], None]) -> int:
    """Every record of a topic from the beginning to its current end, each handed to handle(key, value); returns
    how many. Reads committed records only (as the services do)."""
    consumer = Consumer(
        {
            **connection.librdkafka_config(),
            "group.id": "bench-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.max.bytes": 52428800,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends: dict[int, int] = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                ends[p] = high
        if not ends:
            return 0
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        count = 0
        while ends:
            for record in consumer.consume(10_000, timeout=1.0):
                if record.error() is not None:
                    continue
                partition = record.partition() or 0
                end = ends.get(partition)
                if end is None:
                    continue
                offset = record.offset() or 0
                if offset < end:
                    handle(record.key(), record.value())
                    count += 1
                if offset >= end - 1:
                    del ends[partition]
            for partition in [p for p in ends if consumer.position([TopicPartition(topic, p)])[0].offset >= ends[p]]:
                del ends[partition]
        return count
    finally:
        consumer.close()


def group_lag(connection: KafkaConnection, group: str, topic: str) -> int:
    """Records of the topic the group has not committed yet (summed over partitions)."""
    # log_level 2: closed right after its answer, the reader's coordinator connection is often still mid-handshake,
    # which librdkafka logs as an authentication error; a failure to answer raises here all the same
    consumer = Consumer(
        {**connection.librdkafka_config(), "group.id": group, "enable.auto.commit": False, "log_level": 2}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        lag = 0
        for tp in committed:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=30)
            lag += high - max(tp.offset, 0)
        return lag
    finally:
        consumer.close()


def end_offset(connection: KafkaConnection, topic: str) -> int:
    consumer = Consumer({**connection.librdkafka_config(), "group.id": "bench-reader"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions)
    finally:
        consumer.close()


def resident_mb(platform: Platform, services: tuple[str, ...]) -> dict[str, float]:
    """Resident memory of each service's process and its children (Ray's workers under signal), in MB."""
    sizes = {}
    for name in services:
        pid = platform.process(name).pid()
        if pid is None:
            continue
        with contextlib.suppress(psutil.Error):
            top = psutil.Process(pid)
            total = top.memory_info().rss
            for child in top.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            sizes[name] = round(total / 2**20, 1)
    return sizes


def memory_growth(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    return {
        name: {
            "start_mb": before[name],
            "end_mb": after.get(name),
            "growth_percent": round(100 * (after[name] - before[name]) / before[name], 1) if name in after else None,
        }
        for name in before
    }


def cpu_seconds_by_process() -> dict[int, tuple[str, float]]:
    seconds = {}
    for process in psutil.process_iter(["pid", "name", "cpu_times", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            times = process.info["cpu_times"]
            label = " ".join(process.info["cmdline"] or [process.info["name"]])[:100]
            seconds[process.pid] = (label, times.user + times.system)
    return seconds


def other_load(before: dict[int, tuple[str, float]], elapsed_s: float, ours: set[int]) -> dict[str, Any]:
    """What else the machine did over the run: the load average and the busiest processes that are not this
    benchmark's (percent of one core), from two cpu_seconds_by_process() snapshots."""
    after = cpu_seconds_by_process()
    used = [
        (100 * (seconds - before.get(pid, (label, 0.0))[1]) / elapsed_s, label)
        for pid, (label, seconds) in after.items()
        if pid not in ours
    ]
    return {
        "load_average_1_5_15": [round(x, 2) for x in psutil.getloadavg()],
        "busiest_other_processes_percent_of_one_core": [[round(p, 1), label] for p, label in sorted(used)[-6:][::-1]],
    }


def platform_pids(platform: Platform, names: tuple[str, ...]) -> set[int]:
    """This process, the platform's processes (stack, exchange, services) and all their children."""
    pids = {psutil.Process().pid}
    for name in names:
        pid = platform.process(name).pid()
        if pid is not None:
            pids.add(pid)
            with contextlib.suppress(psutil.Error):
                pids |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
    return pids


@contextlib.contextmanager
def run_dir(keep: str | None) -> Iterator[Path]:
    import tempfile

    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep)
    else:
        with tempfile.TemporaryDirectory() as folder:
            yield Path(folder)
