"""The recent bars of one symbol for GetBars and GetLatestBar: a ring of fixed capacity in one numpy array.

A bar is kept as a row of plain fields (about 120 bytes) rather than as a protobuf message (about 1.5 KB in memory),
and the whole ring is claimed when the symbol is first seen: a symbol's history takes the same memory after one bar
as after a million, so market-data's resident memory does not grow with traffic (480 names of 2,000 bars: 115 MB).
Bars are stored as market-data makes them, each starting its own chain (its correlation id is its message id, it
has no causation id) under one producer name (the first bar's); `append` refuses any other bar rather than store it
wrongly.
"""

from __future__ import annotations

import numpy as np
from trading.common.v1 import common_pb2
from trading.marketdata.v1 import marketdata_pb2

ROW = np.dtype(
    [
        ("message_id", "S36"),
        ("ts_event", "<i8"),
        ("ts_init", "<i8"),
        ("interval_seconds", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("volume", "<f8"),
        ("vwap", "<f8"),
        ("trade_count", "<i8"),
        ("schema_version", "<u4"),
        ("source", "<i2"),
        ("generated", "?"),
    ]
)
ID_BYTES = ROW.fields["message_id"][0].itemsize  # type: ignore[index]


class BarHistory:
    """The last `capacity` bars of `symbol`, oldest first."""

    def __init__(self, symbol: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a bar history needs a capacity of at least 1")
        self.symbol = symbol
        self.producer: str | None = None  # the first bar's
        self.rows = np.zeros(capacity, dtype=ROW)
        self.rows.fill(0)  # claimed now (written, so resident), not page by page as bars arrive
        self.next = 0  # the slot the next bar goes to
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def append(self, bar: marketdata_pb2.Bar) -> None:
        envelope = bar.envelope
        if self.producer is None:
            self.producer = envelope.producer
        if bar.symbol != self.symbol:
            raise ValueError(f"the history of {self.symbol} cannot hold a bar of {bar.symbol}")
        if (
            envelope.correlation_id != envelope.message_id
            or envelope.causation_id
            or envelope.producer != self.producer
            or len(envelope.message_id) > ID_BYTES
            or not envelope.message_id.isascii()
        ):
            raise ValueError(
                f"the bar history holds bars as {self.producer} makes them (a new chain each, a message id of at "
                f"most {ID_BYTES} ASCII characters); not {envelope}"
            )
        self.rows[self.next] = (
            envelope.message_id.encode(),
            envelope.ts_event,
            envelope.ts_init,
            bar.interval_seconds,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            bar.vwap,
            bar.trade_count,
            envelope.schema_version,
            bar.source,
            bar.generated,
        )
        self.next = (self.next + 1) % len(self.rows)
        self.count = min(self.count + 1, len(self.rows))

    def _ordered(self) -> np.ndarray:
        if self.count < len(self.rows):
            return self.rows[: self.count]
        return np.concatenate((self.rows[self.next :], self.rows[: self.next]))

    def latest(self) -> marketdata_pb2.Bar | None:
        if not self.count:
            return None
        return self._bar(self.rows[(self.next - 1) % len(self.rows)])

    def between(self, start_ns: int, end_ns: int = 0, limit: int = 0) -> list[marketdata_pb2.Bar]:
        """Bars with start_ns <= ts_event < end_ns (no end: to the latest), the last `limit` of them if given."""
        rows = self._ordered()
        keep = rows["ts_event"] >= start_ns
        if end_ns:
            keep &= rows["ts_event"] < end_ns
        chosen = rows[keep]
        if limit:
            chosen = chosen[-limit:]
        return [self._bar(row) for row in chosen]

    def _bar(self, row: np.void) -> marketdata_pb2.Bar:
        message_id = bytes(row["message_id"]).decode()
        return marketdata_pb2.Bar(
            envelope=common_pb2.Envelope(
                message_id=message_id,
                correlation_id=message_id,
                ts_event=int(row["ts_event"]),
                ts_init=int(row["ts_init"]),
                producer=self.producer or "",
                schema_version=int(row["schema_version"]),
            ),
            symbol=self.symbol,
            interval_seconds=int(row["interval_seconds"]),
            open=float(row["open"]),
            high=float(row["high"]),
            low=float(row["low"]),
            close=float(row["close"]),
            volume=float(row["volume"]),
            vwap=float(row["vwap"]),
            trade_count=int(row["trade_count"]),
            source=int(row["source"]),  # type: ignore[arg-type]
            generated=bool(row["generated"]),
        )
