"""The running platform (as `make up` starts it; BENCH_SPEED simulated minutes per second, 2 by default): latency from bar
received to signal published, and from signal published to the order's arrival at the broker (through risk over gRPC,
the bus and execution), joined by the ids every message carries. Wall clocks of one machine.

The figures come with a breakdown of each path into its stages, read from the spans every service writes (one trace
follows a bar to its fill), and with the CPU each process used, so a slow figure says where its time went.

Knobs: BENCH_SECONDS (of trading, 60), BENCH_SPEED, BENCH_POLICY (rl as make up | baseline: the trend rule),
BENCH_SIGNAL_SERVING (ray as make up | local), BENCH_DOORBELL (0 as make up: consumers poll every
BENCH_FETCH_WAIT_MS | 1: they sleep until rung), BENCH_FETCH_WAIT_MS (5 as make up), BENCH_RUN_DIR (keep logs and
spans there).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from tradectl.stack import Platform
from trading.oms.v1 import oms_pb2
from trading_platform.messaging import replay

from tests.benchmarks.stats import latency_summary, write_results

TRADING_SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
SPEED = os.environ.get("BENCH_SPEED", "2")  # simulated minutes per second: 2 = what `make up` runs
FETCH_WAIT = os.environ.get("BENCH_FETCH_WAIT_MS", "5")
DOORBELL = os.environ.get("BENCH_DOORBELL", "0") == "1"
SERVING = os.environ.get("BENCH_SIGNAL_SERVING", "ray")  # where the RL policy runs: ray (as make up) or local
POLICY = os.environ.get("BENCH_POLICY", "rl")  # rl: the bundled RL policy (as make up); baseline: the trend rule


async def collect(bootstrap: str) -> tuple[dict[str, int], dict[str, tuple[int, str]], dict[str, str]]:
    bars = {
        m.value.envelope.message_id: m.value.envelope.ts_init async for m in replay(bootstrap, "marketdata.bars.v1")
    }
    signals = {
        m.value.envelope.message_id: (m.value.envelope.ts_init, m.value.bar_id)  # type: ignore[attr-defined]
        async for m in replay(bootstrap, "signal.signals.v1")
    }
    order_signal = {
        m.value.client_order_id: m.value.order.lineage.signal_id  # type: ignore[attr-defined]
        async for m in replay(bootstrap, "oms.events.v1")
        if m.value.event_type == oms_pb2.ORDER_EVENT_TYPE_SUBMITTED
    }  # type: ignore[attr-defined]
    return bars, signals, order_signal


def stage_breakdown(spans_file: Path) -> dict[str, dict[str, float]]:
    """Each stage of the two paths, from the spans (parent links follow a message across services)."""
    spans = [json.loads(line) for line in spans_file.read_text().splitlines() if line.strip()]
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        if span["parent_span_id"]:
            children[span["parent_span_id"]].append(span)

    def kids(span: dict[str, Any], name: str, service: str | None = None) -> Iterator[dict[str, Any]]:
        return (c for c in children[span["span_id"]] if c["name"] == name and service in (None, c["service"]))

    stages: dict[str, list[int]] = defaultdict(list)
    for span in spans:
        if span["name"] == "publish marketdata.bars.v1":
            for consume in kids(span, "consume marketdata.bars.v1", "signal"):
                stages["bar: published -> signal consumes it"].append(consume["start_ns"] - span["start_ns"])
                for publish in kids(consume, "publish signal.signals.v1"):
                    stages["bar: signal consumes -> signal publishes"].append(publish["start_ns"] - consume["start_ns"])
        elif span["name"] == "publish signal.signals.v1":
            for consume in kids(span, "consume signal.signals.v1", "order-management"):
                commands = list(kids(consume, "publish oms.commands.v1"))
                if not commands:
                    continue
                stages["order: signal published -> OMS consumes it"].append(consume["start_ns"] - span["start_ns"])
                stages["order: OMS consumes -> command published"].append(commands[0]["start_ns"] - consume["start_ns"])
                for execution in kids(commands[0], "consume oms.commands.v1", "execution"):
                    stages["order: command published -> execution consumes it"].append(
                        execution["start_ns"] - commands[0]["start_ns"]
                    )
        elif span["name"] == "trading.risk.v1.RiskService/CheckOrder":
            stages["order: risk CheckOrder (server, incl. decision publish)"].append(span["end_ns"] - span["start_ns"])
        elif span["name"] == "consume oms.commands.v1" and span["service"] == "execution":
            submits = [c for c in children[span["span_id"]] if c["name"] == "broker submit"]
            for submit in submits:
                stages["order: execution consumes -> submit starts"].append(submit["start_ns"] - span["start_ns"])
    return {name: latency_summary(values) for name, values in stages.items() if values}


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by each process of the platform (by its command line)."""
    used: dict[str, float] = defaultdict(float)
    for process in psutil.process_iter(["cmdline", "cpu_times"]):
        with contextlib.suppress(psutil.Error, TypeError):
            cmdline = " ".join(process.info["cmdline"] or [])
            times = process.info["cpu_times"]
            for label, marker in (
                ("kafka broker (tansu)", "tansu broker"),
                ("redis", "redis-server"),
                ("vault", "bao server"),
                ("paper exchange", "-m paper_exchange"),
                ("ray", "ray"),
                *(
                    (name, f"-m {name}_service")
                    for name in ("marketdata", "signal", "oms", "risk", "execution", "audit")
                ),
            ):
                if marker in cmdline:
                    used[label] += times.user + times.system
                    break
    return used


def main() -> None:
    keep = os.environ.get("BENCH_RUN_DIR") or None  # keep the run directory (logs, spans.jsonl) for a closer look
    with tempfile.TemporaryDirectory() if keep is None else contextlib.nullcontext(keep) as run_dir:
        wake = {"TRADING_KAFKA__FETCH_MAX_WAIT_MS": FETCH_WAIT, "TRADING_KAFKA__DOORBELL": str(DOORBELL).lower()}
        platform = Platform.with_free_ports(
            Path(run_dir),
            exchange_args=("--speed", SPEED, "--rate-limit", "100000"),
            service_env={
                "execution": {"TRADING_EXECUTION__REQUESTS_PER_MINUTE": "100000", **wake},
                "signal": {"TRADING_SIGNAL__SERVING": SERVING, **wake},
                **{name: wake for name in ("market-data", "order-management", "risk", "audit")},
            },
        )
        if POLICY == "baseline":  # no registry: the documented trend rule serves
            platform.services = tuple(
                dataclasses.replace(s, env={}) if s.name == "signal" else s for s in platform.services
            )
        try:
            states = platform.up()
            assert all(s == "SERVING" for s in states.values()), states
            time.sleep(5)  # past start-up
            before, started = cpu_seconds(), time.monotonic()
            time.sleep(TRADING_SECONDS)
            after, elapsed = cpu_seconds(), time.monotonic() - started
            submissions = httpx.get(f"{platform.exchange_url}/admin/submissions", timeout=30).json()["submissions"]
            bars, signals, order_signal = asyncio.run(collect(platform.stack.endpoints().kafka_bootstrap))
        finally:
            platform.down()
        stages = stage_breakdown(Path(run_dir) / "spans.jsonl")
    bar_to_signal = [ts - bars[bar_id] for ts, bar_id in signals.values() if bar_id in bars]
    signal_to_broker = [
        s["received_ns"] - signals[order_signal[s["client_order_id"]]][0]
        for s in submissions
        if s["client_order_id"] in order_signal and order_signal[s["client_order_id"]] in signals
    ]
    cpu = {name: round(100 * (after[name] - before.get(name, 0.0)) / elapsed, 1) for name in sorted(after)}
    default = (SERVING, POLICY, FETCH_WAIT, DOORBELL) == ("ray", "rl", "5", False)
    variant = "" if default else f"_{POLICY}_{SERVING}_{'doorbell' if DOORBELL else 'poll'}{FETCH_WAIT}"
    write_results(
        "trading_path" + variant,
        {
            "bar_received_to_signal_published": latency_summary(bar_to_signal),
            "signal_published_to_order_at_broker": latency_summary(signal_to_broker),
            "stages": stages,
            "cpu_percent_of_one_core": {**cpu, "total": round(sum(cpu.values()), 1)},
            "bars": len(bars),
            "signals": len(signals),
            "orders_at_broker": len(submissions),
            "paper_exchange_speed": SPEED,
            "fetch_max_wait_ms": FETCH_WAIT,
            "doorbell": DOORBELL,
            "policy": POLICY,
            "signal_serving": SERVING,
            "note": f"{TRADING_SECONDS} s of trading; every service a separate process on {os.cpu_count()} cores "
            "with the broker, Redis, Vault and the paper exchange",
        },
    )


if __name__ == "__main__":
    main()
