"""The stocks stream's raw records (alpaca-py raw_data=True: msgpack maps as sent) become contract messages; a record
missing a field, or with a value of the wrong kind, is refused naming the field (market-data dead-letters it)."""

from __future__ import annotations

import msgpack
import pytest
from marketdata_service.records import BadStreamRecord, stream_bar, stream_quote, stream_trade
from trading.marketdata.v1 import marketdata_pb2

T = msgpack.Timestamp.from_unix_nano(1_262_615_400_000_000_000)


def wire(record: dict[str, object]) -> dict[str, object]:
    """The record as it comes off the stream: packed by the exchange, unpacked as alpaca-py unpacks it."""
    [unpacked] = msgpack.unpackb(msgpack.packb([record]))
    return unpacked  # type: ignore[no-any-return]


def test_stream_records_become_contract_messages_with_their_event_time() -> None:
    bar = stream_bar(wire({"T": "b", "S": "AAPL", "t": T, "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10, "n": 3}))
    assert (bar.symbol, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trade_count) == (
        "AAPL",
        1.0,
        2.0,
        0.5,
        1.5,
        10.0,
        3,
    )
    assert bar.envelope.ts_event == 1_262_615_400_000_000_000 and bar.envelope.message_id
    assert bar.source == marketdata_pb2.DATA_SOURCE_BROKER_STREAM and bar.interval_seconds == 60
    quote = stream_quote(wire({"T": "q", "S": "MSFT", "t": T, "bp": 9.99, "bs": 1, "ap": 10.01, "as": 2}))
    assert (quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size) == (9.99, 1.0, 10.01, 2.0)
    trade = stream_trade(wire({"T": "t", "S": "IBM", "t": T, "p": 130.5, "s": 7, "i": 42}))
    assert (trade.price, trade.size, trade.trade_id) == (130.5, 7.0, "42")


@pytest.mark.parametrize(
    ("record", "named"),
    [
        ({"T": "b", "S": "AAPL", "t": T, "o": 1.0, "h": 2.0, "l": 0.5, "v": 10}, "'c'"),
        ({"T": "b", "S": "AAPL", "t": T, "o": "1", "h": 2.0, "l": 0.5, "c": 1.5, "v": 10}, "'o'"),
        ({"T": "b", "S": "AAPL", "t": "yesterday", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10}, "'t'"),
        ({"T": "q", "S": "MSFT", "t": T, "bp": 9.99, "ap": 10.01, "as": 2}, "'bs'"),
        ({"T": "t", "S": "IBM", "t": T, "p": None, "s": 7, "i": 42}, "'p'"),
    ],
)
def test_a_record_the_contract_cannot_be_made_of_is_refused_naming_the_field(
    record: dict[str, object], named: str
) -> None:
    make = {"b": stream_bar, "q": stream_quote, "t": stream_trade}[str(record["T"])]
    with pytest.raises(BadStreamRecord, match=named):
        make(wire(record))  # type: ignore[operator]
