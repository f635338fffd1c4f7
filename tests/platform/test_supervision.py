"""Supervised consumers over the real broker: a consumer whose loop dies turns its service NOT_SERVING with the
reason and the service exits with code 1 (its supervisor restarts it); a consumer its owner recovers (closes and
replaces, as order-management does after an aborted transaction) does not stop the service; a transient error turns
health NOT_SERVING while it lasts and SERVING again once it is gone."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from trading.marketdata.v1 import marketdata_pb2
from trading_platform.devstack import free_port
from trading_platform.envelope import new_envelope
from trading_platform.messaging import ConsumedMessage, Consumer, Publisher, ensure_topics
from trading_platform.rpc import health_status
from trading_platform.service import ServiceParts, run
from trading_platform.settings import ServiceSettings, load_settings
from trading_platform.testing.plugin import FAST_GROUP_OPTIONS, VaultEndpoint

pytestmark = pytest.mark.integration
BARS = "marketdata.bars.v1"

DYING_SERVICE = textwrap.dedent(
    """
    import asyncio, sys
    from trading_platform.messaging import Consumer, Publisher
    from trading_platform.service import ServiceParts, main
    from trading_platform.settings import ServiceSettings

    namespace = sys.argv[1]

    class Reader:
        def __init__(self, settings):
            self.publisher = Publisher(settings.kafka.connection(), "reader", namespace=namespace,
                                       transactional_id=namespace + "reader")
            self.consumer = Consumer(settings.kafka.connection(), namespace + "reader", ["marketdata.bars.v1"],
                                     self.handle, publisher=self.publisher, namespace=namespace, transactional=True,
                                     max_attempts=1, group_options={"session_timeout_ms": 2000,
                                     "heartbeat_interval_ms": 200, "rebalance_timeout_ms": 1000})

        async def handle(self, message):
            raise RuntimeError("bug in the handler")

        async def start(self):
            await self.publisher.start()
            await self.consumer.start()
            self.task = asyncio.create_task(self.consumer.run())  # nobody watches it: the runner does

        async def stop(self):
            await self.consumer.stop()
            await self.consumer.close()
            await self.publisher.stop()

    async def build(settings):
        return ServiceParts(components=[Reader(settings)])

    main(ServiceSettings, build)
    """
)


def bar() -> marketdata_pb2.Bar:
    return marketdata_pb2.Bar(envelope=new_envelope("test"), symbol="AAPL", interval_seconds=60, close=101.0)


async def publish_bar(bootstrap: str, namespace: str) -> None:
    await ensure_topics(bootstrap, [BARS], namespace=namespace)
    async with Publisher(bootstrap, "test", namespace=namespace) as publisher:
        await publisher.publish(BARS, bar(), key="AAPL")


async def statuses_until(address: str, done: Callable[[], bool], timeout_s: float = 40.0) -> list[str]:
    """The health statuses seen (each change once) until done()."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out; health seen: {seen}"
        status = await health_status(address, timeout_s=0.5)
        if not seen or seen[-1] != status:
            seen.append(status)
        await asyncio.sleep(0.1)
    return seen


async def test_a_consumer_that_dies_turns_health_not_serving_and_the_service_exits_1(
    kafka_bootstrap: str, redis_url: str, vault_endpoint: VaultEndpoint, topic_namespace: str, tmp_path: Path
) -> None:
    await publish_bar(kafka_bootstrap, topic_namespace)
    port = free_port()
    env = {
        **os.environ,
        "TRADING_SERVICE_NAME": "audit",  # a service identity of the dev PKI: its gRPC certificate comes from Vault
        "TRADING_VAULT__ADDR": vault_endpoint.address,
        "TRADING_VAULT__TOKEN": vault_endpoint.token,
        "TRADING_REDIS__URL": redis_url,
        "TRADING_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TRADING_GRPC__PORT": str(port),
        "TRADING_TELEMETRY__SPANS_FILE": str(tmp_path / "spans.jsonl"),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", DYING_SERVICE, topic_namespace],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = await statuses_until(f"127.0.0.1:{port}", lambda: process.poll() is not None, timeout_s=60)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr
    assert "NOT_SERVING" in seen  # before it exited, health said so
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    unhealthy = [e for e in events if e["event"] == "dependency not answering: health NOT_SERVING"]
    assert unhealthy and "RuntimeError: bug in the handler" in unhealthy[0]["reasons"]["consumers"]
    [died] = [e for e in events if e["event"].startswith("consumer died")]
    assert f"consumer {topic_namespace}reader died: RuntimeError: bug in the handler" in died["reason"]
    assert "exiting so the supervisor restarts the service" in stderr
    assert events[-1]["event"] == "service stopped"  # stopped gracefully first


class Owner:
    """A component that owns a consumer and, like order-management, replaces it when its loop dies."""

    def __init__(self, bootstrap: str, namespace: str, handler: Callable[[ConsumedMessage], Any]) -> None:
        self.bootstrap, self.namespace, self.handler = bootstrap, namespace, handler
        self.publisher = Publisher(bootstrap, "owner", namespace=namespace, transactional_id=namespace + "owner")
        self.consumer = self.new_consumer()
        self.replaced = 0
        self.task: asyncio.Task[None] | None = None

    def new_consumer(self) -> Consumer:
        return Consumer(
            self.bootstrap,
            self.namespace + "owner",
            [BARS],
            self.handler,
            publisher=self.publisher,
            namespace=self.namespace,
            group_options=FAST_GROUP_OPTIONS,
            transactional=True,
            max_attempts=1,
        )

    async def start(self) -> None:
        await self.publisher.start()
        await self.consumer.start()
        self.task = asyncio.create_task(self.watch())

    async def watch(self) -> None:
        while True:
            try:
                await self.consumer.run()
                return
            except Exception:
                await self.consumer.close()  # recovered: a new member takes over and the batch comes again
                self.consumer = self.new_consumer()
                self.replaced += 1
                await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        if self.task is not None:
            await self.task
        await self.consumer.close()
        await self.publisher.stop()


def settings_for(bootstrap: str, port: int) -> ServiceSettings:
    return load_settings(
        ServiceSettings, service_name="owner", kafka={"bootstrap_servers": bootstrap}, grpc={"port": port}
    )


async def wait_status(address: str, wanted: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (status := await health_status(address, timeout_s=0.5)) != wanted:
        assert time.monotonic() < deadline, f"health stayed {status}, never {wanted}"
        await asyncio.sleep(0.1)


async def test_a_consumer_its_owner_replaces_does_not_stop_the_service(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    await publish_bar(kafka_bootstrap, topic_namespace)
    calls: list[str] = []

    async def handler(message: ConsumedMessage) -> None:
        calls.append(message.envelope.message_id)
        if len(calls) == 1:
            raise RuntimeError("transaction aborted")  # the loop dies; the owner replaces the consumer

    owner = Owner(kafka_bootstrap, topic_namespace, handler)
    port = free_port()
    stop = asyncio.Event()

    async def build(settings: ServiceSettings) -> ServiceParts:
        return ServiceParts(components=[owner])

    service = asyncio.create_task(run(settings_for(kafka_bootstrap, port), build, stop))
    address = f"127.0.0.1:{port}"
    try:
        await statuses_until(address, lambda: owner.consumer.handled == 1)
        assert owner.replaced == 1 and len(calls) == 2  # the batch came again to the new consumer
        await asyncio.sleep(4.0)  # longer than the runner's grace for a died consumer
        assert not service.done()  # the owner recovered it: the service runs on
        await wait_status(address, "SERVING")
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)


class Reader:
    """A component with a committing consumer whose dependency can be down."""

    def __init__(self, bootstrap: str, namespace: str, down: asyncio.Event) -> None:
        self.down = down
        self.consumer = Consumer(
            bootstrap,
            namespace + "reader",
            [BARS],
            self.handle,
            namespace=namespace,
            group_options=FAST_GROUP_OPTIONS,
            retry_initial_s=0.05,
            transient_backoff_max_s=0.5,
        )
        self.task: asyncio.Task[None] | None = None

    async def handle(self, message: ConsumedMessage) -> None:
        if self.down.is_set():
            raise ConnectionError("risk unreachable")

    async def start(self) -> None:
        await self.consumer.start()
        self.task = asyncio.create_task(self.consumer.run())

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.consumer.close()


async def test_a_transient_error_turns_health_not_serving_while_it_lasts(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    await ensure_topics(kafka_bootstrap, [BARS], namespace=topic_namespace)
    down = asyncio.Event()
    down.set()
    reader = Reader(kafka_bootstrap, topic_namespace, down)
    port = free_port()
    stop = asyncio.Event()

    async def build(settings: ServiceSettings) -> ServiceParts:
        return ServiceParts(components=[reader])

    service = asyncio.create_task(run(settings_for(kafka_bootstrap, port), build, stop))
    address = f"127.0.0.1:{port}"
    try:
        await wait_status(address, "SERVING")
        await publish_bar(kafka_bootstrap, topic_namespace)
        await wait_status(address, "NOT_SERVING")
        assert "ConnectionError: risk unreachable" in (reader.consumer.health() or "")
        assert reader.consumer.handled == 0 and reader.consumer.dead_lettered == 0
        down.clear()  # the dependency is back
        await wait_status(address, "SERVING")
        assert reader.consumer.handled == 1 and not service.done()
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)
