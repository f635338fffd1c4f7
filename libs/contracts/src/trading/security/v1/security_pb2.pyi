from trading.common.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccessRefused(_message.Message):
    __slots__ = ("envelope", "service", "method", "code", "reason", "actor", "certificate", "peer")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    service: str
    method: str
    code: str
    reason: str
    actor: str
    certificate: str
    peer: str
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., service: _Optional[str] = ..., method: _Optional[str] = ..., code: _Optional[str] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ..., certificate: _Optional[str] = ..., peer: _Optional[str] = ...) -> None: ...
