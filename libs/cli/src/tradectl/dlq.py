"""tradectl dlq list|show|redrive <topic>: a topic's dead letters, why they were set aside, and sending them back
after the fix (trading_platform.messaging.redrive)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import typer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table
from trading_platform.messaging.connection import BrokerUnavailableError, KafkaConnection
from trading_platform.messaging.redrive import DeadLetterRecord, dead_letter_topic, read_dead_letters, redrive
from trading_platform.topics import UnknownTopicError, lookup

from tradectl.topics import bootstrap_option, resolve_connection

console = Console(stderr=True, soft_wrap=True)  # messages stay on one line: greppable
T = TypeVar("T")

app = typer.Typer(
    help="Dead letters: what a consumer could not handle, and why. `list` counts a topic's dead letters by reason, "
    "`show` decodes them, `redrive` sends them back to their topic after the fix (each one once, however often it "
    "runs). TOPIC is a registered topic (oms.commands.v1) or its dead-letter topic (oms.commands.v1.dlq).",
    no_args_is_help=True,
)
TOPIC = typer.Argument(..., help="a registered topic, e.g. oms.commands.v1 (or oms.commands.v1.dlq)")
NAMESPACE = typer.Option("", "--namespace", help="topic-name prefix of an isolated run")
JSON = typer.Option(False, "--json", help="machine-readable output")
START_TIMEOUT_S = 10.0


def _dlq_name(topic: str) -> str:
    try:
        return dead_letter_topic(topic)
    except UnknownTopicError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


def _run(connection: KafkaConnection, step: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(step)
    except (TopicAuthorizationFailedError, GroupAuthorizationFailedError, TransactionalIdAuthorizationFailed) as error:
        who = connection.username or "this connection"
        console.print(
            f"[red]{who} may not do this: {type(error).__name__}[/red]\nA redrive writes to the topic the dead letters "
            "came from, which only its writer may: run it with the cluster admin's connection (the dev stack's "
            "default) or the writer's credentials (TRADING_KAFKA__USERNAME / __PASSWORD with --bootstrap)."
        )
        raise typer.Exit(1) from None
    except BrokerUnavailableError as error:
        console.print(
            f"[red]{error}[/red]\nIs the stack up (`tradectl dev status`)? For another cluster pass --bootstrap "
            "(credentials from TRADING_KAFKA__USERNAME / __PASSWORD)."
        )
        raise typer.Exit(1) from None


def _read(topic: str, bootstrap: str | None, namespace: str) -> tuple[str, list[DeadLetterRecord]]:
    name = _dlq_name(topic)
    connection = resolve_connection(bootstrap)
    records = _run(
        connection, read_dead_letters(connection, name, namespace=namespace, start_timeout_s=START_TIMEOUT_S)
    )
    return name, records


def _time(ms_or_ns: int, ns: bool = False) -> str | None:
    if not ms_or_ns:
        return None
    seconds = ms_or_ns / 1e9 if ns else ms_or_ns / 1e3
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@app.command("list")
def list_(
    topic: str = TOPIC,
    bootstrap: str | None = bootstrap_option(),
    namespace: str = NAMESPACE,
    as_json: bool = JSON,
) -> None:
    """Count a topic's dead letters by reason code (and consumer group): how many, how many are still to redrive,
    the oldest and newest."""
    name, records = _read(topic, bootstrap, namespace)
    by_reason: dict[str, dict[str, Any]] = {}
    for record in records:
        row = by_reason.setdefault(
            record.letter.reason_code,
            {"reason_code": record.letter.reason_code, "count": 0, "pending": 0, "groups": Counter()},
        )
        row["count"] += 1
        row["pending"] += 0 if record.redriven else 1
        row["groups"][record.letter.consumer_group] += 1
        row["example"] = record.letter.reason[:200]
        row.setdefault("first", _time(record.letter.envelope.ts_event, ns=True))
        row["last"] = _time(record.letter.envelope.ts_event, ns=True)
    summary = {
        "topic": namespace + name,
        "total": len(records),
        "pending": sum(1 for r in records if not r.redriven),
        "reasons": [{**row, "groups": dict(row["groups"])} for row in by_reason.values()],
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    if not records:
        console.print(f"no dead letters on {namespace + name}")
        return
    table = Table(title=f"{summary['total']} dead letters on {namespace + name} ({summary['pending']} to redrive)")
    for column in ("reason code", "count", "to redrive", "consumer groups", "latest reason"):
        table.add_column(column)
    for row in summary["reasons"]:  # type: ignore[attr-defined]
        groups = ", ".join(f"{g} ({n})" for g, n in row["groups"].items())
        table.add_row(row["reason_code"], str(row["count"]), str(row["pending"]), groups, row["example"])
    Console().print(table)
    console.print(f"`tradectl dlq show {topic}` decodes them; `tradectl dlq redrive {topic}` sends them back")


def _decoded(record: DeadLetterRecord, namespace: str) -> dict[str, Any]:
    letter = record.letter
    source = letter.source_topic.removeprefix(namespace)
    line: dict[str, Any] = {
        "partition": record.partition,
        "offset": record.offset,
        "dead_lettered_at": _time(letter.envelope.ts_event, ns=True),
        "redriven": record.redriven,
        "reason_code": letter.reason_code,
        "reason": letter.reason,
        "error_type": letter.error_type,
        "attempts": letter.attempts,
        "consumer_group": letter.consumer_group,
        "source": {
            "topic": letter.source_topic,
            "partition": letter.source_partition,
            "offset": letter.source_offset,
            "timestamp": _time(letter.source_timestamp_ms),
            "key": letter.key.decode(errors="replace"),
            "headers": {k: v.decode(errors="replace") for k, v in sorted(letter.headers.items())},
        },
    }
    try:
        message = lookup(source).message_type.FromString(letter.value)
        line["value"] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    except Exception as error:  # what does not decode is shown as it is: that is often why it is here
        line["undecodable"] = f"{type(error).__name__}: {error}"
        line["raw_hex"] = letter.value[:256].hex()
    return line


def _position(text: str) -> tuple[int, int]:
    try:
        partition, offset = text.split(":")
        return int(partition), int(offset)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: give PARTITION:OFFSET, e.g. 0:12 (`tradectl dlq list` shows them)"
        ) from None


@app.command("show")
def show(
    topic: str = TOPIC,
    at: list[str] = typer.Option(
        [], "--at", help="PARTITION:OFFSET of a dead letter (repeatable); default: all of them"
    ),
    reason: str | None = typer.Option(None, "--reason", help="only this reason code, e.g. validation_error"),
    pending: bool = typer.Option(False, "--pending", help="only those not redriven yet"),
    limit: int = typer.Option(50, "--limit", help="at most this many, newest last (0 = all)"),
    bootstrap: str | None = bootstrap_option(),
    namespace: str = NAMESPACE,
) -> None:
    """Decode dead letters to JSON lines: where they came from, why they were set aside, and the payload decoded by
    the source topic's registered message type."""
    wanted = [_position(text) for text in at]
    name, records = _read(topic, bootstrap, namespace)
    if wanted:
        by_position = {(r.partition, r.offset): r for r in records}
        missing = [f"{p}:{o}" for p, o in wanted if (p, o) not in by_position]
        if missing:
            console.print(
                f"[red]no dead letter at {', '.join(missing)} on {namespace + name}[/red]; "
                f"`tradectl dlq list {topic}` counts them, `tradectl dlq show {topic}` shows them all"
            )
            raise typer.Exit(1)
        records = [by_position[position] for position in wanted]
    records = [
        r for r in records if (reason is None or r.letter.reason_code == reason) and not (pending and r.redriven)
    ]
    if limit:
        records = records[-limit:]
    for record in records:
        print(json.dumps(_decoded(record, namespace)), flush=True)


@app.command("redrive")
def redrive_command(
    topic: str = TOPIC,
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would be sent, send nothing"),
    bootstrap: str | None = bootstrap_option(),
    namespace: str = NAMESPACE,
    as_json: bool = JSON,
) -> None:
    """Send every dead letter not redriven yet back to the topic and partition it came from, after the fix.

    Each record goes back as it was (key, value, headers: the same message id, so a consumer that already handled
    it drops it) with a `redriven_from` header. What was redriven is committed with the records in one Kafka
    transaction (consumer group <namespace>tradectl-dlq-redrive.<dlq topic>): running it again sends nothing
    twice. A record that fails again is dead-lettered again, and a later redrive sends it once more. On a secured
    cluster it needs the right to write the source topic: the admin's connection, or the topic writer's.
    """
    name = _dlq_name(topic)
    connection = resolve_connection(bootstrap)
    result = _run(
        connection,
        redrive(connection, name, namespace=namespace, dry_run=dry_run, start_timeout_s=START_TIMEOUT_S),
    )
    if as_json:
        print(
            json.dumps(
                {
                    "dead_letter_topic": result.dead_letter_topic,
                    "dry_run": result.dry_run,
                    "sent": [vars(r) for r in result.sent],
                    "already_redriven": result.already_redriven,
                },
                indent=2,
            )
        )
        return
    verb = "would send" if dry_run else "sent"
    for item in result.sent:
        console.print(
            f"{verb} {result.dead_letter_topic}[{item.dead_letter_partition}]@{item.dead_letter_offset} -> "
            f"{item.topic}[{item.partition}] (message {item.message_id})"
        )
    console.print(
        f"{len(result.sent)} {verb}, {result.already_redriven} redriven before (left alone), "
        f"on {result.dead_letter_topic}"
    )
