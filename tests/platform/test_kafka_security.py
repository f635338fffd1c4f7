"""The bus as `make up` secures it: a broker of its own, SASL/SCRAM per service, ACLs from the topic registry.

Each test talks to the same embedded Apache Kafka that `tradectl dev up` starts (DevStack with its defaults), with
the credentials a service reads from Vault, and checks what the broker itself refuses.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from trading_platform import acls
from trading_platform.devstack import DevStack, Endpoints, StackPorts, free_port
from trading_platform.messaging.connection import KafkaConnection
from trading_platform.topics import TOPICS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    stack = DevStack(tmp_path_factory.mktemp("secure"), StackPorts(free_port(), free_port(), free_port()))
    try:
        yield stack.up()
    finally:
        stack.down()


def principal(endpoints: Endpoints, user: str) -> KafkaConnection:
    """A service's connection, with the password the dev stack generated into Vault for it."""
    connection = endpoints.kafka_principal(user)
    assert connection.username == user
    return connection


def end_offsets(connection: KafkaConnection, topic: str) -> int:
    """How many records the topic holds (the sum of its partitions' high watermarks)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**connection.librdkafka_config(), "group.id": "tradectl-offsets"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()


def test_every_registry_topic_exists_and_the_operator_reads_them(secure_stack: Endpoints) -> None:
    from confluent_kafka.admin import AdminClient

    properties = Path(secure_stack.kafka_client_properties)
    assert properties.stat().st_mode & 0o077 == 0, "the client properties hold a password: owner only"
    config = secure_stack.kafka_client_config()
    assert config["sasl.username"] == "tradectl"
    topics = AdminClient(config).list_topics(timeout=10).topics
    for name in TOPICS:
        assert {name, f"{name}.dlq", f"shadow.{name}"} <= set(topics)


async def test_an_anonymous_client_is_refused(secure_stack: Endpoints) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=secure_stack.kafka_bootstrap, request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), 15)
    await producer.stop()


async def test_a_wrong_password_is_refused(secure_stack: Endpoints) -> None:
    wrong = KafkaConnection(secure_stack.kafka_bootstrap, "SASL_PLAINTEXT", "risk", "not-the-password")
    producer = AIOKafkaProducer(**wrong.client_options(), request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), 15)
    await producer.stop()


async def test_only_risk_writes_risk_decisions_and_nothing_else_lands(secure_stack: Endpoints) -> None:
    assert acls.may("risk", "Write", "risk.decisions.v1")
    assert not acls.may("signal", "Write", "risk.decisions.v1")
    before = end_offsets(secure_stack.kafka_admin(), "risk.decisions.v1")
    intruder = AIOKafkaProducer(**principal(secure_stack, "signal").client_options(), enable_idempotence=True)
    await intruder.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await intruder.send_and_wait("risk.decisions.v1", b"forged approval", key=b"x")
    finally:
        await intruder.stop()
    owner = AIOKafkaProducer(**principal(secure_stack, "risk").client_options(), enable_idempotence=True)
    await owner.start()
    try:
        await owner.send_and_wait("risk.decisions.v1", b"from its owner", key=b"x")
    finally:
        await owner.stop()
    assert end_offsets(secure_stack.kafka_admin(), "risk.decisions.v1") == before + 1


async def test_only_order_management_writes_order_commands(secure_stack: Endpoints) -> None:
    for user in ("risk", "execution", "signal", "market-data", "audit"):
        producer = AIOKafkaProducer(**principal(secure_stack, user).client_options())
        await producer.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait("oms.commands.v1", b"forged command", key=b"x")
        finally:
            await producer.stop()


async def test_a_service_reads_its_own_log_back(secure_stack: Endpoints) -> None:
    """order-management rebuilds its book from oms.events.v1 at start: its owner may read it, others may not."""
    assert acls.may("order-management", "Read", "oms.events.v1")
    assert not acls.may("signal", "Read", "oms.events.v1")
    from trading_platform.messaging import replay

    replayed = [m async for m in replay(principal(secure_stack, "order-management"), "oms.events.v1")]
    assert replayed == []  # readable (and empty on a new stack)


async def test_a_service_reads_only_what_it_consumes(secure_stack: Endpoints) -> None:
    # market-data consumes nothing: it may not read the order commands, in a group of its own or otherwise.
    consumer = AIOKafkaConsumer(
        "oms.commands.v1",
        **principal(secure_stack, "market-data").client_options(),
        group_id="market-data",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    with pytest.raises(KafkaError):
        await asyncio.wait_for(consumer.start(), 20)
        await asyncio.wait_for(consumer.getmany(timeout_ms=3000), 10)
        # aiokafka reports an unauthorised subscription as an error on the next fetch
        await asyncio.wait_for(consumer.getone(), 5)
    await consumer.stop()


async def test_a_service_may_not_join_another_services_group(secure_stack: Endpoints) -> None:
    consumer = AIOKafkaConsumer(
        "oms.commands.v1",
        **principal(secure_stack, "execution").client_options(),
        group_id="order-management",  # not execution's
        enable_auto_commit=False,
    )
    with pytest.raises(KafkaError):
        await asyncio.wait_for(consumer.start(), 20)
        await asyncio.wait_for(consumer.getone(), 10)
    await consumer.stop()


def test_confluent_kafka_group_consumer_reads_with_the_operator_credentials(secure_stack: Endpoints) -> None:
    """What an engineer's librdkafka tools do: join a group as the operator principal and read a topic."""
    from confluent_kafka import Consumer, Producer

    owner = principal(secure_stack, "market-data")
    producer = Producer(owner.librdkafka_config())
    marker = uuid.uuid4().hex.encode()
    producer.produce("marketdata.quality.v1", marker, key=b"AAPL")
    assert producer.flush(15) == 0
    config = secure_stack.kafka_client_config()
    consumer = Consumer({**config, "group.id": f"tradectl-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})
    consumer.subscribe(["marketdata.quality.v1"])
    try:
        seen = []
        for _ in range(60):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen.append(message.value())
                if marker in seen:
                    break
        assert marker in seen
    finally:
        consumer.close()


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (Debian: apt-get install kcat)")
def test_kcat_lists_and_reads_topics_with_the_client_properties(secure_stack: Endpoints) -> None:
    properties = secure_stack.kafka_client_properties
    listing = subprocess.run(
        ["kcat", "-F", properties, "-L", "-J"], capture_output=True, text=True, timeout=30, check=True
    )
    names = {topic["topic"] for topic in json.loads(listing.stdout)["topics"]}
    assert set(TOPICS) <= names
    owner = principal(secure_stack, "signal")

    async def publish() -> None:
        producer = AIOKafkaProducer(**owner.client_options(), enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait("signal.monitoring.v1", b"kcat-visible", key=b"v1")
        finally:
            await producer.stop()

    asyncio.run(publish())
    read = subprocess.run(
        ["kcat", "-F", properties, "-C", "-t", "signal.monitoring.v1", "-o", "beginning", "-e", "-q"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "kcat-visible" in read.stdout
