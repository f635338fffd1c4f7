from trading.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LedgerEntry(_message.Message):
    __slots__ = ("sequence", "prev_hash", "hash", "topic", "partition", "offset", "key", "message_type", "payload", "recorded_at", "message_id", "correlation_id", "client_order_id", "symbol", "ts_event")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TS_EVENT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    prev_hash: str
    hash: str
    topic: str
    partition: int
    offset: int
    key: bytes
    message_type: str
    payload: bytes
    recorded_at: int
    message_id: str
    correlation_id: str
    client_order_id: str
    symbol: str
    ts_event: int
    def __init__(self, sequence: _Optional[int] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ..., topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., key: _Optional[bytes] = ..., message_type: _Optional[str] = ..., payload: _Optional[bytes] = ..., recorded_at: _Optional[int] = ..., message_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., ts_event: _Optional[int] = ...) -> None: ...

class CheckpointSealed(_message.Message):
    __slots__ = ("envelope", "segment", "first_sequence", "last_sequence", "last_hash", "checkpoint_hash")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_HASH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_HASH_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    segment: str
    first_sequence: int
    last_sequence: int
    last_hash: str
    checkpoint_hash: str
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., segment: _Optional[str] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., last_hash: _Optional[str] = ..., checkpoint_hash: _Optional[str] = ...) -> None: ...

class VerificationCompleted(_message.Message):
    __slots__ = ("envelope", "ok", "entries_checked", "first_error", "errors")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_ERROR_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    ok: bool
    entries_checked: int
    first_error: str
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., ok: _Optional[bool] = ..., entries_checked: _Optional[int] = ..., first_error: _Optional[str] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("client_order_id", "correlation_id", "symbol", "start", "end", "topic", "limit")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    correlation_id: str
    symbol: str
    start: int
    end: int
    topic: str
    limit: int
    def __init__(self, client_order_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., symbol: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., topic: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
