"""The analytics stream app's fold: records through its faust agents (faust's test context), decoded with the
registry, folded into the tables and their rows handed to the publisher. The bus is left out (the publisher is one
that keeps the rows), so the figures are the app's own cost per record, which bounds the records per second one
worker folds; the broker round trip is bench_kafka_roundtrip's."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from trading.marketdata.v1 import marketdata_pb2
from trading_platform.envelope import new_envelope

from tests.benchmarks.stats import latency_summary, write_results
from tests.services.analytics.helpers import NS, T0, Harness, filled_order

ORDERS = 1_500  # each: signal, four order events, execution's measure
BARS = 3_000


async def run(directory: Path) -> dict[str, object]:
    harness = Harness(directory)
    agents = harness.app.agents
    contexts = {name: agents[name].test_context() for name in ("signal.signals.v1", "oms.events.v1",
                                                                "execution.quality.v1", "marketdata.bars.v1")}  # fmt: skip
    opened = {name: await context.__aenter__() for name, context in contexts.items()}
    samples: dict[str, list[int]] = {name: [] for name in opened}
    started = time.perf_counter()
    records = 0
    try:
        for number in range(ORDERS):
            ts = T0 + number * 40_000_000  # 25 orders a second of event time: every minute and the day window fill
            symbol = ("AAPL", "MSFT", "IBM", "GOOG")[number % 4]
            for topic, message in filled_order(f"co-{number}", symbol, "100", "100.02", ts, slippage=2.0):
                raw = message.SerializeToString()
                begun = time.perf_counter_ns()
                await opened[topic].put(raw, key=symbol.encode())
                samples[topic].append(time.perf_counter_ns() - begun)
                records += 1
        for number in range(BARS):
            bar = marketdata_pb2.Bar(
                symbol=("AAPL", "MSFT", "IBM", "GOOG")[number % 4], interval_seconds=60, close=100.5
            )
            bar.envelope.CopyFrom(new_envelope("market-data", ts_event=T0 + number * NS))
            raw = bar.SerializeToString()
            begun = time.perf_counter_ns()
            await opened["marketdata.bars.v1"].put(raw, key=bar.symbol.encode())
            samples["marketdata.bars.v1"].append(time.perf_counter_ns() - begun)
            records += 1
        elapsed = time.perf_counter() - started
    finally:
        for context in contexts.values():
            await context.__aexit__(None, None, None)
    return {
        "records": records,
        "records_per_s": round(records / elapsed, 1),
        "rows_published": len(harness.sink.rows),
        "per_record": {topic: latency_summary(values) for topic, values in samples.items()},
        "note": "faust test context, one process; rows kept in memory instead of published (no broker)",
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        figures = asyncio.run(run(Path(directory)))
    write_results("analytics", figures)


if __name__ == "__main__":
    main()
