"""tradectl replay over the real broker: a run recorded by the real signal, order-management and risk services (the
paper exchange behind execution's account RPCs) replays with 0 differences on an unchanged configuration, writes
nothing to a live topic, and reports the decisions a changed model version or a changed risk limit changes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from execution_service.app import ExecutionApp
from execution_service.config import ExecutionSettings
from oms_service.app import OmsApp
from oms_service.config import OmsSettings
from paper_exchange.testing import RunningExchange, paper_exchange  # noqa: F401  (the fixture)
from risk_service.app import RiskApp
from risk_service.config import RiskSettings
from signal_service.app import SignalApp
from signal_service.config import SignalSettings
from tradectl.main import app
from trading.execution.v1 import execution_pb2_grpc
from trading.marketdata.v1 import marketdata_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2_grpc
from trading_features import WARMUP_BARS
from trading_platform.devstack import free_port
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher, end_offsets, replay
from trading_platform.rpc import RpcServer, Servicer
from trading_platform.settings import load_settings
from trading_policy import ModelRegistry
from trading_policy.testing import register_linear_policy
from typer.testing import CliRunner

pytestmark = pytest.mark.integration
runner = CliRunner()
SYMBOLS = ["AAPL", "MSFT"]
V1 = [0.5, -0.2, 0.1, 0.3, -0.4, 0.25]
V2 = [-0.3, 0.2, 0.4, 0.1, 0.0, 0.5]
GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 300, "rebalance_timeout_ms": 1500}
LIVE_TOPICS = ["marketdata.bars.v1", "signal.signals.v1", "oms.events.v1", "oms.commands.v1", "risk.decisions.v1"]


def closes(steps: int) -> np.ndarray:
    """A seeded random walk per symbol, moves of about 1%: never near risk's 5% price collar, whichever bar risk saw
    last when an order was checked."""
    rng = np.random.default_rng(7)
    return 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(steps, len(SYMBOLS))), axis=0))


async def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def count(bootstrap: str, namespace: str, topic: str) -> int:
    return len([m async for m in replay(bootstrap, topic, namespace=namespace)])


async def record_a_run(
    bootstrap: str, redis_url: str, namespace: str, registry: ModelRegistry, exchange: RunningExchange
) -> int:
    """Bars through the real services; returns the cut (UNIX ms) between the two halves of the run."""
    kafka = {"bootstrap_servers": bootstrap, "namespace": namespace, **GROUP}
    port = free_port()
    address = f"127.0.0.1:{port}"
    execution = ExecutionApp(
        load_settings(
            ExecutionSettings,
            kafka=kafka,
            broker={"base_url": exchange.url, "api_key_id": exchange.key_id, "api_secret_key": exchange.secret_key},
        )
    )
    risk = RiskApp(
        load_settings(RiskSettings, kafka=kafka, redis={"url": redis_url}, risk={"execution_address": address})
    )
    server = RpcServer(
        [
            Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, risk, "trading.risk.v1.RiskService"),
            Servicer(
                execution_pb2_grpc.add_ExecutionServiceServicer_to_server,
                execution,
                "trading.execution.v1.ExecutionService",
            ),
        ],
        port=port,
    )
    halts: list[str] = []
    oms = OmsApp(
        load_settings(
            OmsSettings,
            kafka=kafka,
            redis={"url": redis_url},
            oms={"risk_address": address, "execution_address": address, "reconcile_interval_s": 0.5},
        ),
        on_halt=halts.append,
    )
    signal = SignalApp(
        load_settings(SignalSettings, kafka=kafka, signal={"model_registry": str(registry.root), "serving": "local"})
    )
    prices = closes(WARMUP_BARS + 15)
    await server.start()
    started: list[Any] = []
    try:
        for component in (risk, oms, signal):
            await component.start()
            started.append(component)
        await wait_for(lambda: _true(risk.engine.day_equity is not None), "risk's start-of-day equity")

        async def run_bars(first: int, last: int) -> None:
            async with Publisher(bootstrap, "market-data", namespace=namespace) as publisher:
                for t in range(first, last):
                    for j, symbol in enumerate(SYMBOLS):
                        bar = marketdata_pb2.Bar(
                            envelope=new_envelope("market-data"),
                            symbol=symbol,
                            interval_seconds=60,
                            open=float(prices[t, j]),
                            close=float(prices[t, j]),
                        )
                        await publisher.publish("marketdata.bars.v1", bar, key=symbol)
                    await asyncio.sleep(0.05)
            signals = (last - WARMUP_BARS + 1) * len(SYMBOLS)

            async def decided() -> bool:
                return await count(bootstrap, namespace, "signal.signals.v1") == signals and (
                    oms.consumer is not None and oms.consumer.handled >= signals
                )

            await wait_for(decided, f"{signals} signals decided by order-management")

        await run_bars(0, WARMUP_BARS + 5)
        await asyncio.sleep(0.5)
        cut_ms = time.time_ns() // 1_000_000
        await asyncio.sleep(0.5)
        await run_bars(WARMUP_BARS + 5, WARMUP_BARS + 15)
        await asyncio.sleep(1.0)  # order events and decisions acked after the last signal
    finally:
        for component in reversed(started):
            await component.stop()
        await server.stop(0)
    assert halts == []
    return cut_ms


async def _true(value: bool) -> bool:
    return value


def replay_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(app, ["replay", *args, "--json"], env=env)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def test_replay_reports_no_difference_unchanged_and_catches_a_model_or_a_limit_change(
    kafka_bootstrap: str,
    redis_url: str,
    topic_namespace: str,
    tmp_path: Path,
    paper_exchange: RunningExchange,  # noqa: F811
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    register_linear_policy(registry, "trend-ppo", V1)
    register_linear_policy(registry, "trend-ppo", V2, promote=None)
    cut_ms = asyncio.run(record_a_run(kafka_bootstrap, redis_url, topic_namespace, registry, paper_exchange))

    recorded_events = asyncio.run(_values(kafka_bootstrap, topic_namespace, "oms.events.v1"))
    submitted = [e for e in recorded_events if e.event_type == oms_pb2.ORDER_EVENT_TYPE_SUBMITTED]
    assert submitted, "the recorded run placed orders (else the order-management and risk comparisons are empty)"

    env = {"TRADING_SIGNAL__MODEL_REGISTRY": str(registry.root)}
    window = ["--from", str(cut_ms), "--to", "now", "--bootstrap", kafka_bootstrap, "--namespace", topic_namespace]
    live_before = asyncio.run(end_offsets(kafka_bootstrap, [topic_namespace + t for t in LIVE_TOPICS]))

    code, same = replay_cli(*window, "--publish", env=env)
    assert same["differences"] == [] and code == 0
    assert same["inputs"]["bars"] == 10 * len(SYMBOLS)
    assert same["compared"]["signal"] == 10 * len(SYMBOLS)
    assert same["compared"]["order-management"] == 10 * len(SYMBOLS)
    assert same["compared"]["risk"] >= 1
    assert asyncio.run(end_offsets(kafka_bootstrap, [topic_namespace + t for t in LIVE_TOPICS])) == live_before
    isolated = same["namespace"]
    assert isolated.startswith("replay-")
    assert asyncio.run(count(kafka_bootstrap, isolated, "signal.signals.v1")) == 10 * len(SYMBOLS)

    code, model = replay_cli(*window, "--model-version", "2", env=env)
    assert code == 1
    changed = {(d["engine"], d["field"]) for d in model["differences"]}
    assert ("signal", "model_version") in changed and ("signal", "target_weight") in changed
    versions = {d["replayed"] for d in model["differences"] if d["field"] == "model_version"}
    assert all(v.startswith("trend-ppo@2+") for v in versions)

    code, limit = replay_cli(*window, env={**env, "TRADING_RISK__MAX_ORDER_NOTIONAL": "1000"})
    assert code == 1
    risk = [d for d in limit["differences"] if d["engine"] == "risk"]
    # each order the lower limit denies differs; and, denied orders no longer being open, so can later sizing
    assert risk and {d["field"] for d in risk} <= {"approved", "reason_code", "decision"}
    reasons = {(d["recorded"], d["replayed"]) for d in risk if d["field"] == "reason_code"}
    assert {replayed for _, replayed in reasons} == {"REASON_CODE_MAX_ORDER_NOTIONAL"}
    assert ("REASON_CODE_APPROVED", "REASON_CODE_MAX_ORDER_NOTIONAL") in reasons  # approved then, denied now
    assert not [d for d in limit["differences"] if d["engine"] == "signal"]  # the signals did not change


async def _values(bootstrap: str, namespace: str, topic: str) -> list[Any]:
    return [m.value async for m in replay(bootstrap, topic, namespace=namespace)]


def flat(output: str) -> str:
    """The CLI's error box as one line of words."""
    return " ".join(output.replace("│", " ").split())


def test_bad_arguments_say_what_to_do(kafka_bootstrap: str, tmp_path: Path) -> None:
    backwards = runner.invoke(app, ["replay", "--from", "now", "--to", "-1h", "--bootstrap", kafka_bootstrap])
    assert backwards.exit_code == 2 and "before it starts" in flat(backwards.output)
    garbled = runner.invoke(app, ["replay", "--from", "yesterday-ish", "--bootstrap", kafka_bootstrap])
    assert garbled.exit_code == 2 and "give ISO 8601 (2026-12-02T14:30:00Z), UNIX ms, now" in flat(garbled.output)
    registry = ModelRegistry(tmp_path / "models")
    register_linear_policy(registry, "trend-ppo", V1)
    unknown = runner.invoke(
        app,
        ["replay", "--from", "-1h", "--bootstrap", kafka_bootstrap, "--model-version", "7"],
        env={"TRADING_SIGNAL__MODEL_REGISTRY": str(registry.root)},
    )
    assert unknown.exit_code == 2 and "has no version '7'" in flat(unknown.output)
