from trading.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeploymentChanged(_message.Message):
    __slots__ = ("envelope", "service", "action", "from_colour", "to_colour", "checks", "forced", "operator", "reason")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    FROM_COLOUR_FIELD_NUMBER: _ClassVar[int]
    TO_COLOUR_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    service: str
    action: str
    from_colour: str
    to_colour: str
    checks: _containers.RepeatedScalarFieldContainer[str]
    forced: bool
    operator: str
    reason: str
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., service: _Optional[str] = ..., action: _Optional[str] = ..., from_colour: _Optional[str] = ..., to_colour: _Optional[str] = ..., checks: _Optional[_Iterable[str]] = ..., forced: _Optional[bool] = ..., operator: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
