"""tradectl topics / tail against the real broker, and tradectl dev up/status/down."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tradectl.main import app
from trading.marketdata.v1 import marketdata_pb2
from trading_platform.devstack import free_port
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher, ensure_topics
from typer.testing import CliRunner

pytestmark = pytest.mark.integration
runner = CliRunner()


async def test_tail_decodes_a_topic_to_json_lines_and_filters_by_key(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    await ensure_topics(kafka_bootstrap, ["marketdata.bars.v1"], namespace=topic_namespace)
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        for symbol, close in [("AAPL", 101.5), ("MSFT", 330.25), ("AAPL", 102.0)]:
            bar = marketdata_pb2.Bar(envelope=new_envelope("test"), symbol=symbol, close=close, interval_seconds=60)
            await publisher.publish("marketdata.bars.v1", bar, key=symbol)
        await publisher._producer.send_and_wait(topic_namespace + "marketdata.bars.v1", b"\xff garbage", key=b"AAPL")
    # Run as a real subprocess: the command a user types.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradectl.main",
            "tail",
            "marketdata.bars.v1",
            "--bootstrap",
            kafka_bootstrap,
            "--namespace",
            topic_namespace,
            "--from-beginning",
            "--no-follow",
            "--key",
            "AAPL",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["value"]["close"] for line in lines if "value" in line] == [101.5, 102.0]
    assert all(line["key"] == "AAPL" and line["topic"] == "marketdata.bars.v1" for line in lines)
    assert lines[0]["value"]["envelope"]["producer"] == "test"
    assert lines[0]["correlation_id"] == lines[0]["value"]["envelope"]["correlation_id"]
    assert "undecodable" in lines[-1]


def test_tail_refuses_an_unknown_topic() -> None:
    result = runner.invoke(app, ["tail", "no.such.topic.v1", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "not in the registry" in result.output


def test_topics_lists_registry_with_offsets(kafka_bootstrap: str, topic_namespace: str) -> None:
    asyncio.run(ensure_topics(kafka_bootstrap, ["risk.alerts.v1"], namespace=topic_namespace))
    result = runner.invoke(app, ["topics", "--bootstrap", kafka_bootstrap, "--namespace", topic_namespace, "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["topic"]: row for row in json.loads(result.stdout)}
    assert rows["oms.events.v1"]["message_type"] == "trading.oms.v1.OrderEvent"
    assert rows["risk.alerts.v1"]["messages"] == 0
    assert rows["marketdata.bars.v1"]["messages"] is None  # not created in this namespace


def test_dev_up_status_down(tmp_path: Path) -> None:
    ports = ["--kafka-port", str(free_port()), "--redis-port", str(free_port()), "--vault-port", str(free_port())]
    run_dir = ["--run-dir", str(tmp_path / "run")]
    try:
        first = runner.invoke(app, ["dev", "up", *run_dir, *ports, "--json"])
        assert first.exit_code == 0, first.output
        endpoints = json.loads(first.stdout)
        again = runner.invoke(app, ["dev", "up", *run_dir, *ports, "--json"])  # idempotent
        assert json.loads(again.stdout) == endpoints
        status = runner.invoke(app, ["dev", "status", *run_dir, "--json"])
        assert status.exit_code == 0
        state = json.loads(status.stdout)
        assert state["healthy"] is True
        assert state["endpoints"]["kafka_bootstrap"] == endpoints["kafka_bootstrap"]
        assert set(state["parts"]) == {"kafka", "redis", "vault"}
        approle = json.loads((tmp_path / "run" / "vault" / "approle" / "execution.json").read_text())
        assert set(approle) == {"role_id", "secret_id"}
        assert oct((tmp_path / "run" / "vault" / "root-token").stat().st_mode & 0o777) == "0o600"
    finally:
        down = runner.invoke(app, ["dev", "down", *run_dir])
    assert down.exit_code == 0 and "kafka" in down.output
    after = runner.invoke(app, ["dev", "status", *run_dir, "--json"])
    assert after.exit_code == 1
