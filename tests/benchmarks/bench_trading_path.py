"""The running platform (as `make up` starts it, on its secured Apache Kafka broker), measured against its own floor
in the same run.

Phases, one stack:

1. **Idle**: every service up, the paper exchange's replay clock stopped (it starts with `--speed 0`): the CPU each
   process uses over BENCH_IDLE_SECONDS with nothing to do. Measured again at the end, the clock stopped again: the
   budget is checked against that one (in the first window the broker's JIT compiler is still busy).
2. **Trading**: the benchmark drives the exchange's clock (`/admin/advance`, BENCH_SPEED simulated minutes per second,
   2 as `make up`) and, over BENCH_SECONDS, measures bar received -> signal published and signal published -> order
   at the broker (through order-management, risk over gRPC, the bus and execution), joined by the ids every message
   carries (wall clocks of one machine); the CPU each process uses; the stages of both paths from the spans every
   service writes (one trace follows a bar to its fill).
3. **Floors**, the clock still running (same machine load), one after the other, BENCH_FLOOR_SECONDS each:
   - one bare bus hop on the same broker: the platform's Publisher (idempotent, acks=all) here, its Consumer in
     another process, on a topic of its own in a namespace of its own (tests.benchmarks.bench_kafka_roundtrip);
     and the same hop with each message in a transaction of its own (as order-management sends its commands);
   - one gRPC unary call: risk's GetTradingState against the running risk service (bench_grpc_unary);
   - one order submit: alpaca-py's TradingClient against the running paper exchange, a buy limit at $0.01
     cancelled right after (no position changes; bench_paper_exchange), to the exchange's handler.
   The floor of signal -> broker is two hops + one gRPC call + one submit (the sum of the p50s; the sum of the p99s
   is given too, as a pessimistic bound); the floor of bar -> signal is one hop.

Readers of the recorded topics use the admin connection (the broker refuses anonymous clients).

Knobs: BENCH_SECONDS (of trading, 60), BENCH_IDLE_SECONDS (20), BENCH_FLOOR_SECONDS (per floor part, 20), BENCH_SPEED
(2), BENCH_POLICY (rl as make up | baseline: the trend rule), BENCH_SIGNAL_SERVING (ray as make up | local),
BENCH_FETCH_WAIT_MS (unset: the services' default, TRADING_KAFKA__FETCH_MAX_WAIT_MS), BENCH_RUN_DIR (keep logs and
spans there).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hvac
import psutil
from paper_exchange.testing import admin_call, admin_headers, stack_admin_key
from tradectl.stack import Platform
from trading.oms.v1 import oms_pb2
from trading_platform.devstack import Endpoints, ManagedProcess
from trading_platform.messaging import KafkaConnection, replay

from tests.benchmarks.bench_grpc_unary import calls_against
from tests.benchmarks.bench_kafka_roundtrip import bus_hop
from tests.benchmarks.bench_paper_exchange import submits_against
from tests.benchmarks.stats import latency_summary, write_results

TRADING_SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
IDLE_SECONDS = int(os.environ.get("BENCH_IDLE_SECONDS", "20"))
FLOOR_SECONDS = int(os.environ.get("BENCH_FLOOR_SECONDS", "20"))
SPEED = float(os.environ.get("BENCH_SPEED", "2"))  # simulated minutes per second: 2 = what `make up` runs
FETCH_WAIT = os.environ.get("BENCH_FETCH_WAIT_MS") or None  # None: the services' own default
SERVING = os.environ.get("BENCH_SIGNAL_SERVING", "ray")  # where the RL policy runs: ray (as make up) or local
POLICY = os.environ.get("BENCH_POLICY", "rl")  # rl: the bundled RL policy (as make up); baseline: the trend rule

BUDGETS_MS = {"signal_to_broker_p99": 10.0, "bar_to_signal_p99": 10.0}
BUDGET_RATIO_P50 = 1.5  # signal -> broker p50 at most 1.5x its floor
BUDGET_IDLE_CPU = 15.0  # the idle stack, percent of one core
STACK_PROCESSES = ("kafka", "redis", "vault", "paper-exchange")
SERVICE_PROCESSES = ("audit", "risk", "execution", "order-management", "signal", "market-data")


class Clock(threading.Thread):
    """Drives the paper exchange's replay: one simulated minute every 1/speed seconds, as its own clock would."""

    def __init__(self, url: str, speed: float) -> None:
        super().__init__(daemon=True, name="exchange-clock")
        self.url, self.interval = url, 1.0 / speed
        self.admin_key = ""  # set once the stack is up (the dev Vault holds it)
        self.halt = threading.Event()
        self.minutes = 0

    def run(self) -> None:
        next_step = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=30, headers=admin_headers(self.admin_key)) as client:
            while not self.halt.is_set():
                moved = client.post("/admin/advance", params={"minutes": 1}).json()
                if moved.get("finished"):
                    return
                self.minutes += 1
                next_step += self.interval
                self.halt.wait(max(0.0, next_step - time.monotonic()))

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)


async def collect(
    connection: KafkaConnection,
) -> tuple[dict[str, int], dict[str, tuple[int, str]], dict[str, str]]:
    bars = {
        m.value.envelope.message_id: m.value.envelope.ts_init async for m in replay(connection, "marketdata.bars.v1")
    }
    signals = {
        m.value.envelope.message_id: (m.value.envelope.ts_init, m.value.bar_id)  # type: ignore[attr-defined]
        async for m in replay(connection, "signal.signals.v1")
    }
    order_signal = {
        m.value.client_order_id: m.value.order.lineage.signal_id  # type: ignore[attr-defined]
        async for m in replay(connection, "oms.events.v1")
        if m.value.event_type == oms_pb2.ORDER_EVENT_TYPE_SUBMITTED  # type: ignore[attr-defined]
    }
    return bars, signals, order_signal


def stage_breakdown(spans_file: Path, received: dict[str, int], window: tuple[int, int]) -> dict[str, dict[str, float]]:
    """Each stage of the two paths, from the spans (parent links follow a message across services), for the traces
    that started in the trading window; `received`: the exchange's arrival time by client order id."""
    spans = [json.loads(line) for line in spans_file.read_text().splitlines() if line.strip()]
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        if span["parent_span_id"]:
            children[span["parent_span_id"]].append(span)

    def kids(span: dict[str, Any], name: str, service: str | None = None) -> Iterator[dict[str, Any]]:
        return (c for c in children[span["span_id"]] if c["name"] == name and service in (None, c["service"]))

    stages: dict[str, list[int]] = defaultdict(list)
    for span in spans:
        if not window[0] <= span["start_ns"] <= window[1]:
            continue
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
                command = commands[0]
                stages["order: signal published -> OMS consumes it"].append(consume["start_ns"] - span["start_ns"])
                stages["order: OMS consumes -> command published"].append(command["start_ns"] - consume["start_ns"])
                for check in kids(consume, "trading.risk.v1.RiskService/CheckOrder", "risk"):
                    stages["order:   OMS consumes -> risk CheckOrder starts (server)"].append(
                        check["start_ns"] - consume["start_ns"]
                    )
                    stages["order:   risk CheckOrder on the server (incl. decision handed to the bus)"].append(
                        check["end_ns"] - check["start_ns"]
                    )
                    stages["order:   risk CheckOrder ends -> command published"].append(
                        command["start_ns"] - check["end_ns"]
                    )
                for execution in kids(command, "consume oms.commands.v1", "execution"):
                    stages["order: command published -> execution consumes it (incl. OMS commit)"].append(
                        execution["start_ns"] - command["start_ns"]
                    )
                    for submit in kids(execution, "broker submit"):
                        stages["order: execution consumes -> submit starts"].append(
                            submit["start_ns"] - execution["start_ns"]
                        )
                        cid = (submit.get("attributes") or {}).get("client_order_id")
                        if cid in received:
                            stages["order: submit starts -> exchange handler"].append(
                                received[cid] - submit["start_ns"]
                            )
    return {name: latency_summary(values) for name, values in stages.items() if values}


def platform_processes(run_dir: Path) -> dict[int, tuple[str, psutil.Process]]:
    """Every process of the platform by pid: the stack's and the services' (their pid files) and their children
    (Ray's under signal)."""
    found: dict[int, tuple[str, psutil.Process]] = {}
    for name in (*STACK_PROCESSES, *SERVICE_PROCESSES):
        pid = ManagedProcess(name, run_dir).pid()
        if pid is None:
            continue
        with contextlib.suppress(psutil.Error):
            top = psutil.Process(pid)
            found[pid] = (name, top)
            for child in top.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    label = "ray (signal's)" if "ray" in " ".join(child.cmdline()) else name
                    found[child.pid] = (label, child)
    return found


def cpu_snapshot(run_dir: Path) -> dict[int, tuple[str, float]]:
    snapshot = {}
    for pid, (label, process) in platform_processes(run_dir).items():
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            snapshot[pid] = (label, times.user + times.system + times.children_user + times.children_system)
    return snapshot


def machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def broker_threads(run_dir: Path) -> dict[str, float]:
    """CPU seconds so far of the broker's threads, by thread name (digits dropped: a pool is one name)."""
    pid = ManagedProcess("kafka", run_dir).pid()
    used: dict[str, float] = defaultdict(float)
    if pid is None:
        return used
    with contextlib.suppress(psutil.Error):
        for thread in psutil.Process(pid).threads():
            with contextlib.suppress(OSError):
                name = Path(f"/proc/{pid}/task/{thread.id}/comm").read_text().strip()
                used[name.rstrip("0123456789#-")] += thread.user_time + thread.system_time
    return used


def measure_cpu(run_dir: Path, seconds: float) -> dict[str, Any]:
    """Percent of one core each process of the platform used over `seconds` (100 = one core), the broker's busiest
    threads, and the machine's whole busy time over the same seconds (other work on the machine shows there)."""
    before, threads_before = cpu_snapshot(run_dir), broker_threads(run_dir)
    machine_before, started = machine_busy_seconds(), time.monotonic()
    time.sleep(seconds)
    after, threads_after = cpu_snapshot(run_dir), broker_threads(run_dir)
    machine_after, elapsed = machine_busy_seconds(), time.monotonic() - started
    threads = {name: 100 * (used - threads_before.get(name, 0.0)) / elapsed for name, used in threads_after.items()}
    busiest = sorted(threads.items(), key=lambda item: -item[1])[:8]
    return cpu_percent(before, after, elapsed) | {
        "broker_threads": {name: round(value, 1) for name, value in busiest},
        "machine_busy": round(100 * (machine_after - machine_before) / elapsed, 1),
        "seconds": round(elapsed, 1),
    }


def cpu_percent(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], elapsed: float) -> dict:
    used: dict[str, float] = defaultdict(float)
    for pid, (label, seconds) in after.items():
        used[label] += seconds - before.get(pid, (label, 0.0))[1]
    by_process = {label: round(100 * value / elapsed, 1) for label, value in sorted(used.items())}
    return {"by_process": by_process, "total": round(100 * sum(used.values()) / elapsed, 1)}


def exchange_keys(endpoints: Endpoints) -> tuple[str, str]:
    client = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
    data = client.secrets.kv.v2.read_secret_version(path="trading/alpaca", raise_on_deleted_version=True)
    return data["data"]["data"]["api_key_id"], data["data"]["data"]["api_secret_key"]


def floors(platform: Platform, admin: KafkaConnection, endpoints: Endpoints) -> dict[str, Any]:
    wait = int(FETCH_WAIT) if FETCH_WAIT else None
    hop = asyncio.run(bus_hop(admin, FLOOR_SECONDS, fetch_max_wait_ms=wait))
    transactional_hop = asyncio.run(bus_hop(admin, FLOOR_SECONDS, fetch_max_wait_ms=wait, transactional=True))
    as_oms = endpoints.grpc_client("order-management")
    grpc = asyncio.run(calls_against(platform.spec("risk").address, FLOOR_SECONDS, as_oms))
    admin_key = stack_admin_key(endpoints.vault_addr, endpoints.vault_token())
    submit = asyncio.run(submits_against(platform.exchange_url, *exchange_keys(endpoints), admin_key, FLOOR_SECONDS))
    return {
        "bus_hop": hop,
        "bus_hop_transactional": transactional_hop,
        "grpc_unary_risk": grpc,
        "paper_exchange_submit": submit,
    }


def floor_of_order_path(parts: dict[str, Any]) -> dict[str, Any]:
    """Two bare hops + one gRPC call + one submit; and, as order-management works now (its command committed in a
    transaction, read read_committed), one bare hop + one transactional hop + the call + the submit."""
    hop = parts["bus_hop"]["publish_to_handler_other_process"]
    txn = parts["bus_hop_transactional"]["publish_to_handler_other_process"]
    grpc = parts["grpc_unary_risk"]["get_trading_state"]
    submit = parts["paper_exchange_submit"]["submit_to_exchange_handler"]
    return {
        "p50_us": round(2 * hop["p50_us"] + grpc["p50_us"] + submit["p50_us"], 2),
        "p99_sum_us": round(2 * hop["p99_us"] + grpc["p99_us"] + submit["p99_us"], 2),
        "parts_p50_us": {
            "two_bus_hops": round(2 * hop["p50_us"], 2),
            "grpc_call": grpc["p50_us"],
            "submit_to_exchange_handler": submit["p50_us"],
        },
        "with_transactional_command_hop": {
            "p50_us": round(hop["p50_us"] + txn["p50_us"] + grpc["p50_us"] + submit["p50_us"], 2),
            "p99_sum_us": round(hop["p99_us"] + txn["p99_us"] + grpc["p99_us"] + submit["p99_us"], 2),
        },
    }


def budgets(
    bar_to_signal: dict[str, float], signal_to_broker: dict[str, float], ratio: float, idle_cpu: float
) -> dict[str, dict[str, Any]]:
    def check(value: float, limit: float, unit: str) -> dict[str, Any]:
        return {"measured": value, "budget": limit, "unit": unit, "met": value <= limit}

    return {
        "signal_to_broker_p50_over_floor": check(ratio, BUDGET_RATIO_P50, "x floor p50"),
        "signal_to_broker_p99": check(
            round(signal_to_broker["p99_us"] / 1000, 2), BUDGETS_MS["signal_to_broker_p99"], "ms"
        ),
        "bar_to_signal_p99": check(round(bar_to_signal["p99_us"] / 1000, 2), BUDGETS_MS["bar_to_signal_p99"], "ms"),
        "idle_stack_cpu": check(idle_cpu, BUDGET_IDLE_CPU, "% of one core"),
    }


def main() -> None:
    keep = os.environ.get("BENCH_RUN_DIR") or None  # keep the run directory (logs, spans.jsonl) for a closer look
    with tempfile.TemporaryDirectory() if keep is None else contextlib.nullcontext(keep) as run_dir:
        wake = {"TRADING_KAFKA__FETCH_MAX_WAIT_MS": FETCH_WAIT} if FETCH_WAIT else {}
        platform = Platform.with_free_ports(
            Path(run_dir),
            exchange_args=("--speed", "0", "--rate-limit", "100000"),  # the benchmark drives the clock
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
        clock = Clock(platform.exchange_url, SPEED)
        try:
            states = platform.up()
            assert all(s == "SERVING" for s in states.values()), states
            endpoints = platform.stack.endpoints()
            admin = endpoints.kafka_admin()
            clock.admin_key = stack_admin_key(endpoints.vault_addr, endpoints.vault_token())
            time.sleep(10)  # past start-up (the broker's JIT, the first group joins)
            idle_cpu = measure_cpu(Path(run_dir), IDLE_SECONDS)
            clock.start()
            time.sleep(5)  # the first bars: features warm up, the policy is called for the first time
            window_start = time.time_ns()
            trading_cpu = measure_cpu(Path(run_dir), TRADING_SECONDS)
            window = (window_start, time.time_ns())
            floor_parts = floors(platform, admin, endpoints)
            clock.stop()
            time.sleep(5)  # the last minute's work drains
            idle_after = measure_cpu(Path(run_dir), IDLE_SECONDS)
            submissions = admin_call(platform.exchange_url, clock.admin_key, "GET", "submissions")["submissions"]
            bars, signals, order_signal = asyncio.run(collect(admin))
        finally:
            if clock.is_alive():
                clock.stop()
            platform.down()
        received = {s["client_order_id"]: s["received_ns"] for s in submissions}
        stages = stage_breakdown(Path(run_dir) / "spans.jsonl", received, window)

    def in_window(ts: int) -> bool:
        return window[0] <= ts <= window[1]

    bar_to_signal = [ts - bars[bar_id] for ts, bar_id in signals.values() if bar_id in bars and in_window(bars[bar_id])]
    signal_to_broker = [
        received[cid] - signals[signal_id][0]
        for cid, signal_id in order_signal.items()
        if cid in received and signal_id in signals and in_window(signals[signal_id][0])
    ]
    bar_figures = latency_summary(bar_to_signal)
    order_figures = latency_summary(signal_to_broker)
    order_floor = floor_of_order_path(floor_parts)
    hop = floor_parts["bus_hop"]["publish_to_handler_other_process"]
    ratio = round(order_figures["p50_us"] / order_floor["p50_us"], 2)
    default = (SERVING, POLICY, FETCH_WAIT) == ("ray", "rl", None)
    variant = "" if default else f"_{POLICY}_{SERVING}_wait{FETCH_WAIT or 'default'}"
    write_results(
        "trading_path" + variant,
        {
            "bar_received_to_signal_published": bar_figures,
            "signal_published_to_order_at_broker": order_figures,
            "floor": {
                "signal_to_broker": order_floor,
                "bar_to_signal_one_hop_p50_us": hop["p50_us"],
                "parts": floor_parts,
            },
            "signal_to_broker_p50_over_floor_p50": ratio,
            "bar_to_signal_p50_over_one_hop_p50": round(bar_figures["p50_us"] / hop["p50_us"], 2),
            # the idle budget is the steady state: the first idle window also pays the broker's JIT compilation
            "budgets": budgets(bar_figures, order_figures, ratio, idle_after["total"]),
            "stages": stages,
            "cpu_percent_of_one_core": {
                "idle_before_trading": idle_cpu,
                "trading": trading_cpu,
                "idle_exchange_paused_after_trading": idle_after,
            },
            "bars": sum(1 for ts in bars.values() if in_window(ts)),
            "signals": sum(1 for ts, _ in signals.values() if in_window(ts)),
            "orders_at_broker": len(signal_to_broker),
            "simulated_minutes": clock.minutes,
            "paper_exchange_speed": SPEED,
            "fetch_max_wait_ms": FETCH_WAIT or "service default",
            "policy": POLICY,
            "signal_serving": SERVING,
            "note": f"{IDLE_SECONDS} s idle (exchange clock stopped), {TRADING_SECONDS} s of trading, then the floors "
            f"({FLOOR_SECONDS} s each) while trading goes on; every service a separate process on {os.cpu_count()} "
            "cores with the broker (Apache Kafka, SASL/SCRAM), Redis, Vault and the paper exchange",
        },
    )


if __name__ == "__main__":
    main()
