"""Market data in one process: validate + normalise to protobuf + serialise, messages per second."""

from __future__ import annotations

import time

from marketdata_service.engine import BarValidator
from trading.marketdata.v1 import marketdata_pb2
from trading_platform.envelope import new_envelope

from tests.benchmarks.stats import write_results

BARS = 100_000
SYMBOLS = [f"S{i:03d}" for i in range(50)]


def main() -> None:
    validator = BarValidator()
    raw = [
        (SYMBOLS[i % len(SYMBOLS)], (i // len(SYMBOLS) + 1) * 60_000_000_000, 100 + (i % 7) * 0.01) for i in range(BARS)
    ]
    started = time.perf_counter()
    accepted = 0
    for symbol, ts, close in raw:
        bar = marketdata_pb2.Bar(
            envelope=new_envelope("market-data", ts_event=ts),
            symbol=symbol,
            interval_seconds=60,
            open=close,
            high=close + 0.02,
            low=close - 0.02,
            close=close,
            volume=1000.0,
        )
        if validator.validate(bar) is None:
            bar.SerializeToString()
            accepted += 1
    elapsed = time.perf_counter() - started
    write_results(
        "marketdata_throughput",
        {
            "bars": BARS,
            "accepted": accepted,
            "validate_normalise_serialise_msgs_per_s": round(BARS / elapsed),
            "note": "one process, one core; publishing to the broker is measured by bench_kafka_roundtrip",
        },
    )


if __name__ == "__main__":
    main()
