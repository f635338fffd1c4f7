from trading.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_SOURCE_UNSPECIFIED: _ClassVar[DataSource]
    DATA_SOURCE_BROKER_STREAM: _ClassVar[DataSource]
    DATA_SOURCE_BROKER_REST: _ClassVar[DataSource]
    DATA_SOURCE_REPLAY: _ClassVar[DataSource]
DATA_SOURCE_UNSPECIFIED: DataSource
DATA_SOURCE_BROKER_STREAM: DataSource
DATA_SOURCE_BROKER_REST: DataSource
DATA_SOURCE_REPLAY: DataSource

class Quote(_message.Message):
    __slots__ = ("envelope", "symbol", "bid_price", "bid_size", "ask_price", "ask_size", "source", "generated")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    ASK_SIZE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    GENERATED_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    symbol: str
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    source: DataSource
    generated: bool
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., symbol: _Optional[str] = ..., bid_price: _Optional[float] = ..., bid_size: _Optional[float] = ..., ask_price: _Optional[float] = ..., ask_size: _Optional[float] = ..., source: _Optional[_Union[DataSource, str]] = ..., generated: _Optional[bool] = ...) -> None: ...

class Trade(_message.Message):
    __slots__ = ("envelope", "symbol", "price", "size", "trade_id", "source", "generated")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    GENERATED_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    symbol: str
    price: float
    size: float
    trade_id: str
    source: DataSource
    generated: bool
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., symbol: _Optional[str] = ..., price: _Optional[float] = ..., size: _Optional[float] = ..., trade_id: _Optional[str] = ..., source: _Optional[_Union[DataSource, str]] = ..., generated: _Optional[bool] = ...) -> None: ...

class Bar(_message.Message):
    __slots__ = ("envelope", "symbol", "interval_seconds", "open", "high", "low", "close", "volume", "vwap", "trade_count", "source", "generated")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    VWAP_FIELD_NUMBER: _ClassVar[int]
    TRADE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    GENERATED_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    symbol: str
    interval_seconds: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    trade_count: int
    source: DataSource
    generated: bool
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., symbol: _Optional[str] = ..., interval_seconds: _Optional[int] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., volume: _Optional[float] = ..., vwap: _Optional[float] = ..., trade_count: _Optional[int] = ..., source: _Optional[_Union[DataSource, str]] = ..., generated: _Optional[bool] = ...) -> None: ...

class DataQualityScored(_message.Message):
    __slots__ = ("envelope", "symbol", "window_start", "window_end", "score", "records_accepted", "records_rejected", "rejects_by_reason", "stale")
    class RejectsByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    RECORDS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    REJECTS_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    symbol: str
    window_start: int
    window_end: int
    score: float
    records_accepted: int
    records_rejected: int
    rejects_by_reason: _containers.ScalarMap[str, int]
    stale: bool
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., symbol: _Optional[str] = ..., window_start: _Optional[int] = ..., window_end: _Optional[int] = ..., score: _Optional[float] = ..., records_accepted: _Optional[int] = ..., records_rejected: _Optional[int] = ..., rejects_by_reason: _Optional[_Mapping[str, int]] = ..., stale: _Optional[bool] = ...) -> None: ...

class DataSourceSwitched(_message.Message):
    __slots__ = ("envelope", "from_source", "to_source", "reason")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    FROM_SOURCE_FIELD_NUMBER: _ClassVar[int]
    TO_SOURCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    from_source: DataSource
    to_source: DataSource
    reason: str
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., from_source: _Optional[_Union[DataSource, str]] = ..., to_source: _Optional[_Union[DataSource, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class GetLatestRequest(_message.Message):
    __slots__ = ("symbol",)
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    def __init__(self, symbol: _Optional[str] = ...) -> None: ...

class GetBarsRequest(_message.Message):
    __slots__ = ("symbol", "start", "end", "limit")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    start: int
    end: int
    limit: int
    def __init__(self, symbol: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GetBarsResponse(_message.Message):
    __slots__ = ("bars",)
    BARS_FIELD_NUMBER: _ClassVar[int]
    bars: _containers.RepeatedCompositeFieldContainer[Bar]
    def __init__(self, bars: _Optional[_Iterable[_Union[Bar, _Mapping]]] = ...) -> None: ...
