"""tradectl topics / tail: see what is on the bus. Any registered topic (and its .dlq and shadow. forms) decodes
to JSON lines by its registered message type."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table
from trading_platform.devstack import DEFAULT_RUN_DIR, DevStack
from trading_platform.messaging import KafkaConnection, decode_record, end_offsets
from trading_platform.messaging.connection import CLIENT_TIMEOUTS, start_client
from trading_platform.topics import TOPICS, UnknownTopicError, lookup

console = Console(stderr=True)


def bootstrap_option() -> Any:
    return typer.Option(
        None,
        "--bootstrap",
        envvar="TRADING_KAFKA__BOOTSTRAP_SERVERS",
        help="Kafka bootstrap servers (default: the running dev stack)",
    )


def connection_from_env(bootstrap: str) -> KafkaConnection:
    """A given bootstrap address, with the credentials of $TRADING_KAFKA__SECURITY_PROTOCOL, __USERNAME and
    __PASSWORD when they are set (PLAINTEXT otherwise)."""
    protocol = os.environ.get("TRADING_KAFKA__SECURITY_PROTOCOL", "PLAINTEXT")
    return KafkaConnection(
        bootstrap,
        protocol,  # type: ignore[arg-type]  # KafkaConnection refuses a protocol it does not know
        os.environ.get("TRADING_KAFKA__USERNAME"),
        os.environ.get("TRADING_KAFKA__PASSWORD"),
    )


def resolve_connection(bootstrap: str | None, run_dir: Path = DEFAULT_RUN_DIR) -> KafkaConnection:
    """--bootstrap (with the credentials from the environment), else the running dev stack's operator principal."""
    if bootstrap:
        return connection_from_env(bootstrap)
    return DevStack.from_run_dir(run_dir).endpoints().kafka_admin()


def register(app: typer.Typer) -> None:
    app.command("topics")(topics)
    app.command("tail")(tail)


def topics(
    bootstrap: str | None = bootstrap_option(),
    namespace: str = typer.Option("", help="topic-name prefix of an isolated run"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable"),
) -> None:
    """List the registered topics with their message types, partitions, retention and current end offsets."""
    connection = resolve_connection(bootstrap)
    server = connection.bootstrap_servers
    try:
        offsets = asyncio.run(end_offsets(connection, [namespace + name for name in TOPICS], start_timeout_s=5))
    except Exception as error:
        console.print(f"[yellow]broker at {server} did not answer ({error}); offsets unknown[/yellow]")
        offsets = {}
    rows = []
    for name, topic in TOPICS.items():
        partition_offsets = offsets.get(namespace + name)
        rows.append(
            {
                "topic": name,
                "message_type": topic.type_name,
                "partitions": topic.partitions,
                "retention_ms": topic.retention_ms,
                "key": topic.key,
                "description": topic.description,
                "messages": sum(partition_offsets.values()) if partition_offsets is not None else None,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"topics on {server}")
    for column in ("topic", "message type", "partitions", "key", "messages"):
        table.add_column(column)
    for row in rows:
        count = "-" if row["messages"] is None else str(row["messages"])
        table.add_row(str(row["topic"]), str(row["message_type"]), str(row["partitions"]), str(row["key"]), count)
    Console().print(table)
    console.print("each topic also has <topic>.dlq (dead letters) and shadow.<topic> (blue-green idle colour)")


def tail(
    topic: str = typer.Argument(..., help="a registered topic, e.g. marketdata.bars.v1, oms.events.v1.dlq"),
    bootstrap: str | None = bootstrap_option(),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="start at the oldest message"),
    follow: bool = typer.Option(True, "--follow/--no-follow", help="keep waiting for new messages"),
    key: str | None = typer.Option(None, "--key", help="only messages with this key (symbol, client order id)"),
    max_messages: int = typer.Option(0, "--max", help="stop after this many messages (0 = no limit)"),
    namespace: str = typer.Option("", help="topic-name prefix of an isolated run"),
) -> None:
    """Decode a topic to JSON lines on stdout: one object per message with topic, partition, offset, key and value."""
    try:
        registered = lookup(topic)
    except UnknownTopicError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    asyncio.run(
        _tail(
            resolve_connection(bootstrap),
            namespace + registered.name,
            registered.name,
            from_beginning,
            follow,
            key,
            max_messages,
        )
    )


async def _tail(
    connection: KafkaConnection | str,
    physical: str,
    name: str,
    from_beginning: bool,
    follow: bool,
    key: str | None,
    max_messages: int,
) -> None:
    if isinstance(connection, str):
        connection = KafkaConnection(connection)
    # read_committed, as every consumer of the platform: records of aborted transactions are not shown
    # The reset policy matches the seek: a reset to the other end begun at assign() could land after the seek.
    consumer = AIOKafkaConsumer(
        **connection.client_options(),
        **CLIENT_TIMEOUTS,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await start_client(consumer.start, connection)
    try:
        ends = (await end_offsets(connection, [physical])).get(physical, {})
        if not ends:
            console.print(f"[yellow]{physical} does not exist yet on {connection.bootstrap_servers}[/yellow]")
            if not follow:
                return
        partitions = [TopicPartition(physical, p) for p in sorted(ends)]
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        printed = 0
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in sorted(batch.items(), key=lambda item: item[0].partition):
                for record in records:
                    record_key = record.key.decode(errors="replace") if record.key is not None else None
                    if key is not None and record_key != key:
                        continue
                    print(json.dumps(_record_json(name, tp.partition, record, record_key)), flush=True)
                    printed += 1
                    if max_messages and printed >= max_messages:
                        return
            if not follow and all(await _at_end(consumer, partitions, ends)):
                return
    finally:
        await consumer.stop()


async def _at_end(consumer: AIOKafkaConsumer, partitions: list[TopicPartition], ends: dict[int, int]) -> list[bool]:
    return [await consumer.position(tp) >= ends[tp.partition] for tp in partitions]


def _record_json(name: str, partition: int, record: Any, key: str | None) -> dict[str, Any]:
    headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    line: dict[str, Any] = {
        "topic": name,
        "partition": partition,
        "offset": record.offset,
        "key": key,
        "timestamp_ms": record.timestamp,
        "correlation_id": headers.get("correlation_id"),
    }
    try:
        line["value"] = json_format.MessageToDict(decode_record(name, record.value), preserving_proto_field_name=True)
    except Exception as error:  # an undecodable record is shown, not skipped: that is what one tails for
        line["undecodable"] = f"{type(error).__name__}: {error}"
        line["raw_hex"] = (record.value or b"")[:256].hex()
    return line
