"""tradectl dlq over the real broker: list counts a topic's dead letters by reason, show decodes them by the source
topic's message type, redrive sends them back as they were (same message id: a consumer that handled one drops it)
and never twice; errors say what to do."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from tradectl.main import app
from trading.marketdata.v1 import marketdata_pb2
from trading_platform.envelope import new_envelope
from trading_platform.messaging import (
    ConsumedMessage,
    Consumer,
    MemoryIdempotencyStore,
    PermanentError,
    Publisher,
    ensure_topics,
    replay,
)
from trading_platform.messaging.redrive import REDRIVEN_FROM
from trading_platform.testing.plugin import FAST_GROUP_OPTIONS
from typer.testing import CliRunner

pytestmark = pytest.mark.integration
runner = CliRunner()
BARS = "marketdata.bars.v1"


def bar(symbol: str) -> marketdata_pb2.Bar:
    return marketdata_pb2.Bar(envelope=new_envelope("test"), symbol=symbol, interval_seconds=60, close=101.0)


async def consume(
    bootstrap: str,
    namespace: str,
    group: str,
    handler: Any,
    store: MemoryIdempotencyStore,
    done: Callable[[Consumer], bool],
) -> Consumer:
    consumer = Consumer(
        bootstrap,
        namespace + group,
        [BARS],
        handler,
        namespace=namespace,
        idempotency=store,
        group_options=FAST_GROUP_OPTIONS,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(30):
            while not done(consumer):
                await asyncio.sleep(0.02)
    finally:
        await consumer.stop()
        await task
        await consumer.close()
    return consumer


async def records_on(bootstrap: str, physical: str) -> int:
    """How many committed records the topic holds, decodable or not."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False)
    await reader.start()
    try:
        partitions = [TopicPartition(physical, p) for p in range(3)]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ends = await reader.end_offsets(partitions)
        count = 0
        while [tp for tp in partitions if await reader.position(tp) < ends[tp]]:
            count += sum(len(records) for records in (await reader.getmany(timeout_ms=500)).values())
        return count
    finally:
        await reader.stop()


def cli(*args: str) -> Any:
    return runner.invoke(app, ["dlq", *args])


def test_list_show_and_redrive_once_after_the_fix(kafka_bootstrap: str, topic_namespace: str) -> None:
    ns = ["--bootstrap", kafka_bootstrap, "--namespace", topic_namespace]
    rejected = bar("REJECT")

    async def record_a_bad_run() -> None:
        await ensure_topics(kafka_bootstrap, [BARS, BARS + ".dlq"], namespace=topic_namespace)
        async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
            await publisher.publish(BARS, bar("AAPL"), key="AAPL")
            await publisher.publish(BARS, rejected, key="REJECT")
            await publisher._producer.send_and_wait(topic_namespace + BARS, b"\xff not a bar", key=b"JUNK")

    async def buggy(message: ConsumedMessage) -> None:
        if message.value.symbol == "REJECT":  # type: ignore[attr-defined]
            raise PermanentError("REJECT is not a known symbol", reason_code="validation_error")

    async def accepts_all(message: ConsumedMessage) -> None:
        pass

    store_b = MemoryIdempotencyStore()  # group b's handled ids (a Redis store in a service) survive its restart

    async def first_run() -> None:
        await record_a_bad_run()
        await consume(
            kafka_bootstrap, topic_namespace, "a", buggy, MemoryIdempotencyStore(), lambda c: c.dead_lettered == 2
        )
        await consume(kafka_bootstrap, topic_namespace, "b", accepts_all, store_b, lambda c: c.handled == 2)

    asyncio.run(first_run())

    listed = cli("list", BARS, *ns, "--json")
    assert listed.exit_code == 0, listed.output
    summary = json.loads(listed.stdout)
    assert summary["total"] == 3 and summary["pending"] == 3
    reasons = {row["reason_code"]: row for row in summary["reasons"]}
    assert reasons["decode_error"]["count"] == 2  # both groups set the undecodable record aside
    assert reasons["decode_error"]["groups"] == {f"{topic_namespace}a": 1, f"{topic_namespace}b": 1}
    assert reasons["validation_error"]["count"] == 1
    assert reasons["validation_error"]["example"] == "REJECT is not a known symbol"

    shown = cli("show", f"{BARS}.dlq", *ns, "--reason", "validation_error")
    assert shown.exit_code == 0, shown.output
    [line] = [json.loads(text) for text in shown.stdout.splitlines()]
    assert (
        line["value"]["symbol"] == "REJECT" and line["value"]["envelope"]["message_id"] == rejected.envelope.message_id
    )
    assert line["source"]["topic"] == topic_namespace + BARS and line["source"]["key"] == "REJECT"
    assert line["error_type"] == "PermanentError" and line["attempts"] == 1 and line["redriven"] is False
    junk = [json.loads(text) for text in cli("show", BARS, *ns, "--reason", "decode_error").stdout.splitlines()]
    assert len(junk) == 2 and all("undecodable" in j and j["raw_hex"] == b"\xff not a bar".hex() for j in junk)
    missing = cli("show", BARS, *ns, "--at", "2:999")
    assert (
        missing.exit_code == 1 and "no dead letter at 2:999" in missing.output and "tradectl dlq list" in missing.output
    )

    def source_size(expected: int | None = None) -> int:
        """The source topic's committed records; given `expected`, once they are visible (a transaction's commit
        markers reach its partitions a moment after the commit returns)."""
        deadline = time.monotonic() + 15
        while True:
            size = asyncio.run(records_on(kafka_bootstrap, topic_namespace + BARS))
            if expected is None or size == expected or time.monotonic() > deadline:
                return size
            time.sleep(0.2)

    assert source_size() == 3
    dry = json.loads(cli("redrive", BARS, *ns, "--json", "--dry-run").stdout)
    assert dry["dry_run"] and len(dry["sent"]) == 3 and source_size() == 3  # nothing sent

    first = cli("redrive", BARS, *ns, "--json")
    assert first.exit_code == 0, first.output
    redriven = json.loads(first.stdout)
    assert len(redriven["sent"]) == 3 and redriven["already_redriven"] == 0
    assert {item["message_id"] for item in redriven["sent"]} >= {rejected.envelope.message_id}
    assert source_size(expected=6) == 6
    again = json.loads(cli("redrive", BARS, *ns, "--json").stdout)
    assert again["sent"] == [] and again["already_redriven"] == 3
    time.sleep(1.0)
    assert source_size() == 6  # nothing twice

    async def after_the_fix() -> tuple[Consumer, Consumer, list[Any]]:
        handled: list[str] = []

        async def fixed(message: ConsumedMessage) -> None:
            handled.append(message.value.symbol)  # type: ignore[attr-defined]

        a = await consume(
            kafka_bootstrap,
            topic_namespace,
            "a",
            fixed,
            MemoryIdempotencyStore(),
            lambda c: c.handled == 1 and c.dead_lettered == 2,
        )
        assert handled == ["REJECT"]
        b = await consume(
            kafka_bootstrap,
            topic_namespace,
            "b",
            accepts_all,
            store_b,
            lambda c: c.duplicates_skipped == 1 and c.dead_lettered == 2,
        )
        records = [m async for m in replay(kafka_bootstrap, BARS, namespace=topic_namespace)]
        return a, b, records

    a, b, records = asyncio.run(after_the_fix())
    assert a.handled == 1  # the fixed consumer handled the redriven message
    assert b.handled == 0 and b.duplicates_skipped == 1  # the one that had handled it dropped it by its message id
    again_rejected = [m for m in records if m.value.symbol == "REJECT"]  # type: ignore[attr-defined]
    assert [m.value for m in again_rejected] == [rejected, rejected]
    assert REDRIVEN_FROM not in again_rejected[0].headers
    assert again_rejected[1].headers[REDRIVEN_FROM].decode().startswith(f"{topic_namespace}{BARS}.dlq:")
    assert again_rejected[1].partition == again_rejected[0].partition  # back to the partition it came from

    after = json.loads(cli("list", BARS, *ns, "--json").stdout)
    assert after["total"] == 7 and after["pending"] == 4  # the undecodable came back once more, nothing else


def test_errors_say_what_to_do(kafka_bootstrap: str, topic_namespace: str) -> None:
    unknown = cli("list", "orders.v9", "--bootstrap", kafka_bootstrap)
    assert unknown.exit_code == 2 and "not in the registry" in unknown.output and "tradectl topics" in unknown.output
    bad = cli("show", BARS, "--bootstrap", kafka_bootstrap, "--at", "zero")
    assert bad.exit_code == 2 and "PARTITION:OFFSET" in bad.output
    empty = cli("list", BARS, "--bootstrap", kafka_bootstrap, "--namespace", topic_namespace)
    assert empty.exit_code == 0 and "no dead letters on" in empty.output
    nothing = json.loads(
        cli("redrive", BARS, "--bootstrap", kafka_bootstrap, "--namespace", topic_namespace, "--json").stdout
    )
    assert nothing["sent"] == [] and nothing["already_redriven"] == 0
    down = cli("list", BARS, "--bootstrap", "127.0.0.1:9")
    assert down.exit_code == 1 and "127.0.0.1:9" in down.output and "tradectl dev status" in down.output
