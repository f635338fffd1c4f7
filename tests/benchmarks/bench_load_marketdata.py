"""Market data under load: quotes, trades and bars of the bytetheory panel's names at a target rate
(10,000 messages/s) for --duration-s, through market-data (the broker's stocks stream -> validated records on the
bus) and signal (bars -> features -> the served policy -> signals), on the dev stack's secured Apache Kafka broker.

The paper exchange replays the real 2009-2010 days with generated minutes. It needs days common to every name it
serves, and no day is common to all 524 names of the panel (some list only a few), so the benchmark serves the 480
names with at least 200 of the window's 238 days (173 days in common). It drives the exchange's clock so that one
simulated minute (a trade, a quote and a bar per name: 1,440 messages) goes out every 1,440 / rate seconds. Only
market-data and signal run (nothing else consumes), each a process as `make up` starts it. `--trace-sample-ratio`
sets market-data's TRADING_TELEMETRY__TRACE_SAMPLE_RATIO (bar traces recorded; signal follows each bar's decision).

Figures (benchmarks/results/load_marketdata.json):
- what the exchange sent (GET /admin/streamed) and what reached the topics, per symbol and type: every message is
  either on its topic or on the topic's dead-letter topic with a reason (`lost` counts the rest). Bars market-data
  took from the REST backup (after a stream pause) are counted apart: the stream never carried them;
- signals per bar;
- bar published -> signal published (the bar's and the signal's envelope ts_init, joined by the signal's bar_id),
  over the bars of the measured window;
- market-data's backlog (sent by the exchange, not yet on the bus), signal's consumer lag (group `signal` on
  marketdata.bars.v1) and both services' resident memory, sampled every 10 s, and how long the backlog and the lag
  took to drain after the clock stopped;
- the achieved rate (the exchange blocks when its stream reader falls behind, so it can be below the target);
- resident memory of each service at the start and the end of the window, and what else the machine was doing.

python -m tests.benchmarks bench_load_marketdata [--duration-s 600] [--rate 10000] [--serving ray|local]
    [--trace-sample-ratio 0.01] [--run-dir D]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

from paper_exchange.testing import admin_call
from tradectl.stack import Platform
from trading.common.v1 import common_pb2
from trading.marketdata.v1 import marketdata_pb2
from trading.signal.v1 import signal_pb2
from trading_datasets import available_symbols, daily_ohlcv
from trading_platform.messaging import KafkaConnection

from tests.benchmarks.load import (
    Clock,
    admin_key,
    cpu_seconds_by_process,
    end_offset,
    group_lag,
    memory_growth,
    other_load,
    platform_pids,
    read_topic,
    resident_mb,
    run_dir,
    start,
)
from tests.benchmarks.stats import latency_summary, write_results

SERVICES = ("signal", "market-data")
WINDOW = ("2009-09-01", "2010-08-31")
KINDS = {"trades": "marketdata.trades.v1", "quotes": "marketdata.quotes.v1", "bars": "marketdata.bars.v1"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_load_marketdata", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-s", type=float, default=600.0, help="seconds of load (10 minutes by default)")
    parser.add_argument("--rate", type=float, default=10_000.0, help="target messages per second")
    parser.add_argument(
        "--serving", choices=["ray", "local"], default="ray", help="signal's policy on Ray (as make up)"
    )
    parser.add_argument(
        "--trace-sample-ratio",
        type=float,
        default=1.0,
        help="share of bar traces market-data records (TRADING_TELEMETRY__TRACE_SAMPLE_RATIO; signal follows it)",
    )
    parser.add_argument("--drain-s", type=float, default=300.0, help="longest wait for the backlog to drain")
    parser.add_argument("--run-dir", default=None, help="keep logs here")
    return parser.parse_args(argv)


def panel_symbols(min_days: int = 200) -> list[str]:
    """The bytetheory names the paper exchange can replay together: it needs trading days common to every name, and
    no day of the window is common to all 524 (some names list only a few); the names with at least `min_days` of
    the window's 238 days share 173 of them (480 names)."""
    return [
        s
        for s in available_symbols("bytetheory")
        if len(daily_ohlcv(s, "bytetheory", WINDOW[0], WINDOW[1])) >= min_days
    ]


def streamed(url: str, key: str) -> dict[str, dict[str, int]]:
    return admin_call(url, key, "GET", "streamed")["streamed"]  # type: ignore[no-any-return]


def on_the_bus(admin: KafkaConnection) -> int:
    return sum(end_offset(admin, topic) + end_offset(admin, topic + ".dlq") for topic in KINDS.values())


def main(argv: list[str] | None = None) -> None:
    args = parse(argv or [])
    symbols = panel_symbols()
    interval_s = 3 * len(symbols) / args.rate
    with run_dir(args.run_dir) as folder:
        platform = Platform.with_free_ports(
            folder,
            exchange_args=(
                "--speed",
                "0",
                "--source",
                "bytetheory",
                "--symbols",
                ",".join(symbols),
                "--start",
                WINDOW[0],
                "--end",
                WINDOW[1],
                "--rate-limit",
                "100000",
            ),
            service_env={
                "market-data": {
                    "TRADING_MARKETDATA__SYMBOLS": json.dumps(symbols),
                    "TRADING_TELEMETRY__TRACE_SAMPLE_RATIO": str(args.trace_sample_ratio),
                },
                "signal": {"TRADING_SIGNAL__SERVING": args.serving},
            },
        )
        try:
            figures = measure(platform, symbols, interval_s, args)
        finally:
            platform.down()
    write_results("load_marketdata", figures)


def measure(platform: Platform, symbols: list[str], interval_s: float, args: argparse.Namespace) -> dict[str, Any]:
    endpoints = start(platform, SERVICES)
    admin = endpoints.kafka_admin()
    url, key = platform.exchange_url, admin_key(endpoints)
    deadline = time.monotonic() + 60
    while len(streamed(url, key)["bars"]) < len(symbols):  # market-data subscribed to every name
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"market-data did not subscribe to every name: {len(streamed(url, key)['bars'])} streamed"
            )
        admin_call(url, key, "POST", "advance", params={"minutes": 1})
        time.sleep(0.5)
    time.sleep(5)  # the first minutes reach signal; its features warm up
    memory_start = resident_mb(platform, SERVICES)
    cpu_before, ours = cpu_seconds_by_process(), platform_pids(platform, (*SERVICES, "paper-exchange", "kafka"))
    sent_before = sum(sum(c.values()) for c in streamed(url, key).values())
    clock = Clock(url, key, interval_s)
    window_start = time.time_ns()
    started = time.monotonic()
    clock.start()
    timeline = []
    try:
        while time.monotonic() - started < args.duration_s:
            time.sleep(min(10.0, max(0.0, args.duration_s - (time.monotonic() - started))))
            published = on_the_bus(admin)  # read before what was sent: the backlog is never understated
            sent = sum(sum(c.values()) for c in streamed(url, key).values())
            timeline.append(
                {
                    "t_s": round(time.monotonic() - started, 1),
                    "sent": sent,
                    "marketdata_backlog": sent - published,
                    "signal_lag": group_lag(admin, "signal", "marketdata.bars.v1"),
                    "resident_mb": resident_mb(platform, SERVICES),
                }
            )
    finally:
        clock.stop()
    window = (window_start, time.time_ns())
    elapsed = time.monotonic() - started
    sent_in_window = sum(sum(c.values()) for c in streamed(url, key).values()) - sent_before
    memory_end = resident_mb(platform, SERVICES)
    load = other_load(cpu_before, elapsed, ours)
    drain_started = time.monotonic()
    total_sent = sum(sum(c.values()) for c in streamed(url, key).values())
    while time.monotonic() - drain_started < args.drain_s:
        if on_the_bus(admin) >= total_sent and group_lag(admin, "signal", "marketdata.bars.v1") == 0:
            break
        time.sleep(2)
    drained_s = round(time.monotonic() - drain_started, 1)
    return {
        **accounting(admin, streamed(url, key), window),
        "target_msgs_per_s": args.rate,
        "achieved_msgs_per_s": round(sent_in_window / elapsed),
        "simulated_minutes": clock.minutes,
        "duration_s": round(elapsed, 1),
        "symbols": len(symbols),
        "signal_serving": args.serving,
        "trace_sample_ratio": args.trace_sample_ratio,
        "lag_timeline": timeline,
        "max_marketdata_backlog": max((s["marketdata_backlog"] for s in timeline), default=0),
        "max_signal_lag": max((s["signal_lag"] for s in timeline), default=0),
        "drain_after_clock_stopped_s": drained_s,
        "resident_memory": memory_growth(memory_start, memory_end),
        "machine": load,
        "note": "market-data and signal as processes (the bundled RL policy), the paper exchange and the secured "
        "Apache Kafka broker on one machine; latency is bar published -> signal published (envelope ts_init, one "
        "clock)",
    }


def accounting(admin: KafkaConnection, sent: dict[str, dict[str, int]], window: tuple[int, int]) -> dict[str, Any]:
    """Per symbol and type: sent by the exchange == on the topic + dead-lettered with a reason; bar -> signal."""
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    for kind, topic in KINDS.items():

        def count(key: bytes | None, _: bytes | None, kind: str = kind) -> None:
            counts[kind][(key or b"").decode()] += 1

        read_topic(admin, topic, count)
    rejected: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    reasons: Counter[str] = Counter()
    for kind, topic in KINDS.items():

        def dead(_: bytes | None, value: bytes | None, kind: str = kind) -> None:
            letter = common_pb2.DeadLetter.FromString(value or b"")
            rejected[kind][letter.key.decode()] += 1
            reasons[f"{kind}:{letter.reason_code or 'NO REASON'}"] += 1

        read_topic(admin, topic + ".dlq", dead)
    published: dict[str, int] = {}
    backup: Counter[str] = Counter()  # bars of the REST backup: never on the stream, so not in what it sent

    def bar(key: bytes | None, value: bytes | None) -> None:
        message = marketdata_pb2.Bar.FromString(value or b"")
        if message.source == marketdata_pb2.DATA_SOURCE_BROKER_REST:
            backup[(key or b"").decode()] += 1
        if window[0] <= message.envelope.ts_init <= window[1]:
            published[message.envelope.message_id] = message.envelope.ts_init

    read_topic(admin, "marketdata.bars.v1", bar)
    lost, extra, mismatched = 0, 0, []
    for kind in KINDS:
        for symbol in set(sent[kind]) | set(counts[kind]):
            from_backup = backup[symbol] if kind == "bars" else 0
            accounted = counts[kind][symbol] - from_backup + rejected[kind][symbol]
            expected = sent[kind].get(symbol, 0)
            if accounted != expected:
                mismatched.append(f"{kind} {symbol}: sent {expected}, on the bus {accounted} (+{from_backup} REST)")
            lost += max(0, expected - accounted)
            extra += max(0, accounted - expected)

    latencies: list[int] = []
    signals: Counter[str] = Counter()

    def signal(key: bytes | None, value: bytes | None) -> None:
        message = signal_pb2.SignalGenerated.FromString(value or b"")
        signals[(key or b"").decode()] += 1
        at = published.get(message.bar_id)
        if at is not None:
            latencies.append(message.envelope.ts_init - at)

    read_topic(admin, "signal.signals.v1", signal)
    return {
        "sent": {kind: sum(c.values()) for kind, c in sent.items()},
        "on_topic": {kind: sum(c.values()) for kind, c in counts.items()},
        "dead_lettered": dict(reasons),
        "dead_lettered_by_symbol_top_10": {
            f"{kind}:{symbol}": n
            for (kind, symbol), n in Counter(
                {(kind, symbol): n for kind, c in rejected.items() for symbol, n in c.items()}
            ).most_common(10)
        },
        "lost": lost,
        "unexpected_extra": extra,
        "mismatched_first_10": sorted(mismatched)[:10],
        "signals": sum(signals.values()),
        "bars_on_topic": sum(counts["bars"].values()),
        "bars_from_the_rest_backup": sum(backup.values()),
        "bar_published_to_signal_published": latency_summary(latencies) if latencies else {"samples": 0},
    }


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
