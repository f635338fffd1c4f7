"""The running platform (as `make up` starts it; BENCH_SPEED simulated minutes per second, 2 by default): latency from bar
received to signal published, and from signal published to the order's arrival at the broker (through risk over gRPC,
the bus and execution), joined by the ids every message carries. Wall clocks of one machine."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import httpx
from tradectl.stack import Platform
from trading.oms.v1 import oms_pb2
from trading_platform.messaging import replay

from tests.benchmarks.stats import latency_summary, write_results

TRADING_SECONDS = 45
SPEED = os.environ.get("BENCH_SPEED", "2")  # simulated minutes per second: 2 = what `make up` runs
FETCH_WAIT = os.environ.get("BENCH_FETCH_WAIT_MS", "5")  # order-path consumers (signal, OMS, execution)
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


def main() -> None:
    with tempfile.TemporaryDirectory() as run_dir:
        fetch = {"TRADING_KAFKA__FETCH_MAX_WAIT_MS": FETCH_WAIT}
        platform = Platform.with_free_ports(
            Path(run_dir),
            exchange_args=("--speed", SPEED, "--rate-limit", "100000"),
            service_env={
                "execution": {"TRADING_EXECUTION__REQUESTS_PER_MINUTE": "100000", **fetch},
                "order-management": fetch,
                "signal": {"TRADING_SIGNAL__SERVING": SERVING, **fetch},
            },
        )
        if POLICY == "baseline":  # no registry: the documented trend rule serves
            platform.services = tuple(
                dataclasses.replace(s, env={}) if s.name == "signal" else s for s in platform.services
            )
        try:
            states = platform.up()
            assert all(s == "SERVING" for s in states.values()), states
            time.sleep(TRADING_SECONDS)
            submissions = httpx.get(f"{platform.exchange_url}/admin/submissions", timeout=30).json()["submissions"]
            bars, signals, order_signal = asyncio.run(collect(platform.stack.endpoints().kafka_bootstrap))
        finally:
            platform.down()
    bar_to_signal = [ts - bars[bar_id] for ts, bar_id in signals.values() if bar_id in bars]
    signal_to_broker = [
        s["received_ns"] - signals[order_signal[s["client_order_id"]]][0]
        for s in submissions
        if s["client_order_id"] in order_signal and order_signal[s["client_order_id"]] in signals
    ]
    variant = "" if (SERVING, POLICY, FETCH_WAIT) == ("ray", "rl", "5") else f"_{POLICY}_{SERVING}_wait{FETCH_WAIT}"
    write_results(
        "trading_path" + variant,
        {
            "bar_received_to_signal_published": latency_summary(bar_to_signal),
            "signal_published_to_order_at_broker": latency_summary(signal_to_broker),
            "bars": len(bars),
            "signals": len(signals),
            "orders_at_broker": len(submissions),
            "paper_exchange_speed": SPEED,
            "order_path_fetch_max_wait_ms": FETCH_WAIT,
            "policy": POLICY,
            "signal_serving": SERVING,
            "note": f"{TRADING_SECONDS} s of trading; every service a separate process on 2 cores with the broker, "
            "Redis, Vault and the paper exchange",
        },
    )


if __name__ == "__main__":
    main()
