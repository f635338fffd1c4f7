"""A Kafka broker that goes away while a service runs: health turns NOT_SERVING, producers retry, and once the broker
is back the service is SERVING again and nothing published meanwhile is lost. On a broker of its own (the secured
embedded Kafka, as `make up` runs it), stopped and started again under the running service."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from trading_platform.devstack import DevStack, Endpoints, StackPorts, free_port
from trading_platform.messaging.connection import KafkaConnection
from trading_platform.rpc import ClientSecurity, health_status

from tests.platform.test_rpc_and_service import EXAMPLE_SERVICE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevStack, Endpoints]]:
    devstack = DevStack(tmp_path_factory.mktemp("outage"), StackPorts(free_port(), free_port(), free_port()))
    try:
        yield devstack, devstack.up()
    finally:
        devstack.down()


async def wait_for_health(address: str, wanted: str, timeout_s: float, security: ClientSecurity) -> str:
    deadline = time.monotonic() + timeout_s
    status = ""
    while time.monotonic() < deadline:
        status = await health_status(address, security=security)
        if status == wanted:
            return status
        await asyncio.sleep(0.2)
    return status


async def test_health_follows_the_broker_and_a_publish_during_the_outage_lands(
    stack: tuple[DevStack, Endpoints], tmp_path: Path
) -> None:
    devstack, endpoints = stack
    connection = endpoints.kafka_principal("risk")
    port = free_port()
    env = {
        **os.environ,
        "TRADING_SERVICE_NAME": "risk",
        "TRADING_KAFKA__BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
        "TRADING_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "TRADING_KAFKA__USERNAME": "risk",
        "TRADING_KAFKA__PASSWORD": str(connection.password),
        "TRADING_GRPC__PORT": str(port),
        "TRADING_TELEMETRY__SPANS_FILE": str(tmp_path / "spans.jsonl"),
        # its gRPC certificate from this stack's PKI, with risk's AppRole, as `tradectl up` runs it
        "TRADING_VAULT__ADDR": endpoints.vault_addr,
        "TRADING_VAULT__AUTH_METHOD": "approle",
        "TRADING_VAULT__APPROLE_FILE": str(Path(endpoints.approle_dir) / "risk.json"),
        "TRADING_REDIS__URL": endpoints.redis_url,
    }
    operator = endpoints.grpc_client()
    service = subprocess.Popen(
        [sys.executable, "-c", EXAMPLE_SERVICE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    address = f"127.0.0.1:{port}"
    producer = AIOKafkaProducer(**connection.client_options(), enable_idempotence=True, request_timeout_ms=60_000)
    try:
        assert await wait_for_health(address, "SERVING", 30, operator) == "SERVING"
        await producer.start()
        await producer.send_and_wait("risk.alerts.v1", b"before", key=b"k")

        devstack.kafka.stop()
        assert await wait_for_health(address, "NOT_SERVING", 20, operator) == "NOT_SERVING"
        during = asyncio.ensure_future(producer.send_and_wait("risk.alerts.v1", b"during", key=b"k"))
        await asyncio.sleep(2)
        assert not during.done(), "the producer keeps retrying while the broker is away"

        devstack.up()  # the same broker (same ports and data) starts again
        assert await wait_for_health(address, "SERVING", 60, operator) == "SERVING"
        await asyncio.wait_for(during, 60)
    finally:
        await producer.stop()
        service.terminate()
        _, stderr = service.communicate(timeout=30)

    assert "dependency not answering: health NOT_SERVING" in stderr
    assert "dependencies answer again: health SERVING" in stderr
    assert read_all(endpoints.kafka_admin(), "risk.alerts.v1") == [b"before", b"during"]


def read_all(connection: KafkaConnection, topic: str) -> list[bytes]:
    """Every record of the topic, with a librdkafka consumer assigned to each partition from the beginning."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer
    from confluent_kafka import TopicPartition as Partition

    consumer = Consumer({**connection.librdkafka_config(), "group.id": "tradectl-outage", "enable.partition.eof": True})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([Partition(topic, p, OFFSET_BEGINNING) for p in partitions])
        values: list[bytes] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + 20
        while len(at_end) < len(partitions) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                at_end.add(message.partition())
            else:
                values.append(message.value())
        return values
    finally:
        consumer.close()
