"""The broker's market data as contract messages: the stocks stream's records (alpaca-py with `raw_data=True`: the
msgpack maps as sent, no pydantic model per record) and the REST backup's bars. Pure, no I/O.

A record without a field the contract needs, or with a value of the wrong kind, raises BadStreamRecord naming the
field: it is dead-lettered, not dropped, and the stream goes on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgpack
from trading.marketdata.v1 import marketdata_pb2
from trading_platform.envelope import new_envelope

STREAM = marketdata_pb2.DATA_SOURCE_BROKER_STREAM
PRODUCER = "market-data"


class BadStreamRecord(ValueError):
    """A stream record the contract cannot be made from; the message names the field."""


def timestamp_ns(value: Any) -> int:
    """Nanoseconds since the epoch of a stream timestamp (msgpack Timestamp, as Alpaca sends) or a datetime."""
    if isinstance(value, msgpack.Timestamp):
        return int(value.to_unix_nano())
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000_000)
    raise BadStreamRecord(f"field 't' is not a timestamp: {value!r}")


def _fields(raw: dict[str, Any], kind: str, names: tuple[str, ...]) -> list[Any]:
    try:
        return [raw[name] for name in names]
    except KeyError as missing:
        raise BadStreamRecord(f"{kind} of {raw.get('S', '?')} has no field {missing}") from None


def _number(value: Any, name: str, kind: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadStreamRecord(f"{kind}: field {name!r} is not a number: {value!r}")
    return float(value)


def stream_bar(raw: dict[str, Any]) -> marketdata_pb2.Bar:
    symbol, t, o, h, low, c, v = _fields(raw, "bar", ("S", "t", "o", "h", "l", "c", "v"))
    return marketdata_pb2.Bar(
        envelope=new_envelope(PRODUCER, ts_event=timestamp_ns(t)),
        symbol=symbol,
        interval_seconds=60,
        open=_number(o, "o", "bar"),
        high=_number(h, "h", "bar"),
        low=_number(low, "l", "bar"),
        close=_number(c, "c", "bar"),
        volume=_number(v, "v", "bar"),
        vwap=_number(raw.get("vw") or 0, "vw", "bar"),
        trade_count=int(raw.get("n") or 0),
        source=STREAM,
        generated=True,
    )


def rest_bar(bar: Any, source: int) -> marketdata_pb2.Bar:
    """A bar of alpaca-py's REST client (its pydantic model)."""
    return marketdata_pb2.Bar(
        envelope=new_envelope(PRODUCER, ts_event=int(bar.timestamp.timestamp() * 1e9)),
        symbol=bar.symbol,
        interval_seconds=60,
        open=float(bar.open),
        high=float(bar.high),
        low=float(bar.low),
        close=float(bar.close),
        volume=float(bar.volume),
        vwap=float(bar.vwap or 0),
        trade_count=int(bar.trade_count or 0),
        source=source,
        generated=True,
    )


def stream_quote(raw: dict[str, Any]) -> marketdata_pb2.Quote:
    symbol, t, bp, bs, ap, asks = _fields(raw, "quote", ("S", "t", "bp", "bs", "ap", "as"))
    return marketdata_pb2.Quote(
        envelope=new_envelope(PRODUCER, ts_event=timestamp_ns(t)),
        symbol=symbol,
        bid_price=_number(bp, "bp", "quote"),
        bid_size=_number(bs, "bs", "quote"),
        ask_price=_number(ap, "ap", "quote"),
        ask_size=_number(asks, "as", "quote"),
        source=STREAM,
        generated=True,
    )


def stream_trade(raw: dict[str, Any]) -> marketdata_pb2.Trade:
    symbol, t, p, size, trade_id = _fields(raw, "trade", ("S", "t", "p", "s", "i"))
    return marketdata_pb2.Trade(
        envelope=new_envelope(PRODUCER, ts_event=timestamp_ns(t)),
        symbol=symbol,
        price=_number(p, "p", "trade"),
        size=_number(size, "s", "trade"),
        trade_id=str(trade_id),
        source=STREAM,
        generated=True,
    )
