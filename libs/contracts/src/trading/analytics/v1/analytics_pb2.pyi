from trading.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AlertStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_STATUS_UNSPECIFIED: _ClassVar[AlertStatus]
    ALERT_STATUS_FIRING: _ClassVar[AlertStatus]
    ALERT_STATUS_RESOLVED: _ClassVar[AlertStatus]

class AlertSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_SEVERITY_UNSPECIFIED: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_INFO: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_WARNING: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_CRITICAL: _ClassVar[AlertSeverity]
ALERT_STATUS_UNSPECIFIED: AlertStatus
ALERT_STATUS_FIRING: AlertStatus
ALERT_STATUS_RESOLVED: AlertStatus
ALERT_SEVERITY_UNSPECIFIED: AlertSeverity
ALERT_SEVERITY_INFO: AlertSeverity
ALERT_SEVERITY_WARNING: AlertSeverity
ALERT_SEVERITY_CRITICAL: AlertSeverity

class ExecutionQualityWindow(_message.Message):
    __slots__ = ("envelope", "symbol", "window_start", "window_end", "orders", "filled_orders", "rejected_orders", "canceled_orders", "arrival_slippage_bps", "implementation_shortfall_bps", "fill_ratio", "reject_rate", "cancel_rate", "rejects_by_reason", "cancels_by_reason", "decision_to_submit_p50_ms", "decision_to_submit_p99_ms", "submit_to_accept_p50_ms", "submit_to_accept_p99_ms", "submit_to_fill_p50_ms", "submit_to_fill_p99_ms", "filled_notional")
    class RejectsByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class CancelsByReasonEntry(_message.Message):
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
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    FILLED_ORDERS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_ORDERS_FIELD_NUMBER: _ClassVar[int]
    CANCELED_ORDERS_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_SLIPPAGE_BPS_FIELD_NUMBER: _ClassVar[int]
    IMPLEMENTATION_SHORTFALL_BPS_FIELD_NUMBER: _ClassVar[int]
    FILL_RATIO_FIELD_NUMBER: _ClassVar[int]
    REJECT_RATE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_RATE_FIELD_NUMBER: _ClassVar[int]
    REJECTS_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    CANCELS_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    DECISION_TO_SUBMIT_P50_MS_FIELD_NUMBER: _ClassVar[int]
    DECISION_TO_SUBMIT_P99_MS_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TO_ACCEPT_P50_MS_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TO_ACCEPT_P99_MS_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TO_FILL_P50_MS_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TO_FILL_P99_MS_FIELD_NUMBER: _ClassVar[int]
    FILLED_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    symbol: str
    window_start: int
    window_end: int
    orders: int
    filled_orders: int
    rejected_orders: int
    canceled_orders: int
    arrival_slippage_bps: float
    implementation_shortfall_bps: float
    fill_ratio: float
    reject_rate: float
    cancel_rate: float
    rejects_by_reason: _containers.ScalarMap[str, int]
    cancels_by_reason: _containers.ScalarMap[str, int]
    decision_to_submit_p50_ms: float
    decision_to_submit_p99_ms: float
    submit_to_accept_p50_ms: float
    submit_to_accept_p99_ms: float
    submit_to_fill_p50_ms: float
    submit_to_fill_p99_ms: float
    filled_notional: _common_pb2.Decimal
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., symbol: _Optional[str] = ..., window_start: _Optional[int] = ..., window_end: _Optional[int] = ..., orders: _Optional[int] = ..., filled_orders: _Optional[int] = ..., rejected_orders: _Optional[int] = ..., canceled_orders: _Optional[int] = ..., arrival_slippage_bps: _Optional[float] = ..., implementation_shortfall_bps: _Optional[float] = ..., fill_ratio: _Optional[float] = ..., reject_rate: _Optional[float] = ..., cancel_rate: _Optional[float] = ..., rejects_by_reason: _Optional[_Mapping[str, int]] = ..., cancels_by_reason: _Optional[_Mapping[str, int]] = ..., decision_to_submit_p50_ms: _Optional[float] = ..., decision_to_submit_p99_ms: _Optional[float] = ..., submit_to_accept_p50_ms: _Optional[float] = ..., submit_to_accept_p99_ms: _Optional[float] = ..., submit_to_fill_p50_ms: _Optional[float] = ..., submit_to_fill_p99_ms: _Optional[float] = ..., filled_notional: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ...) -> None: ...

class PnlDay(_message.Message):
    __slots__ = ("envelope", "day", "symbol", "realized", "unrealized", "fees", "position", "fills", "traded_notional")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    REALIZED_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    FILLS_FIELD_NUMBER: _ClassVar[int]
    TRADED_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    day: str
    symbol: str
    realized: _common_pb2.Decimal
    unrealized: _common_pb2.Decimal
    fees: _common_pb2.Decimal
    position: _common_pb2.Decimal
    fills: int
    traded_notional: _common_pb2.Decimal
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., day: _Optional[str] = ..., symbol: _Optional[str] = ..., realized: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., unrealized: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., fees: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., position: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., fills: _Optional[int] = ..., traded_notional: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ...) -> None: ...

class DataQualityWindow(_message.Message):
    __slots__ = ("envelope", "symbol", "window_start", "window_end", "score_mean", "score_min", "records_accepted", "records_rejected", "gaps", "failovers", "rejects_by_reason")
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
    SCORE_MEAN_FIELD_NUMBER: _ClassVar[int]
    SCORE_MIN_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    RECORDS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    GAPS_FIELD_NUMBER: _ClassVar[int]
    FAILOVERS_FIELD_NUMBER: _ClassVar[int]
    REJECTS_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    symbol: str
    window_start: int
    window_end: int
    score_mean: float
    score_min: float
    records_accepted: int
    records_rejected: int
    gaps: int
    failovers: int
    rejects_by_reason: _containers.ScalarMap[str, int]
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., symbol: _Optional[str] = ..., window_start: _Optional[int] = ..., window_end: _Optional[int] = ..., score_mean: _Optional[float] = ..., score_min: _Optional[float] = ..., records_accepted: _Optional[int] = ..., records_rejected: _Optional[int] = ..., gaps: _Optional[int] = ..., failovers: _Optional[int] = ..., rejects_by_reason: _Optional[_Mapping[str, int]] = ...) -> None: ...

class DeadLetterWindow(_message.Message):
    __slots__ = ("envelope", "topic", "window_start", "window_end", "count", "total", "by_reason")
    class ByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    BY_REASON_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    topic: str
    window_start: int
    window_end: int
    count: int
    total: int
    by_reason: _containers.ScalarMap[str, int]
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., topic: _Optional[str] = ..., window_start: _Optional[int] = ..., window_end: _Optional[int] = ..., count: _Optional[int] = ..., total: _Optional[int] = ..., by_reason: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("envelope", "rule", "rules_version", "subject", "status", "severity", "summary", "value", "threshold", "starts_at", "ends_at", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    RULES_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    rule: str
    rules_version: str
    subject: str
    status: AlertStatus
    severity: AlertSeverity
    summary: str
    value: float
    threshold: float
    starts_at: int
    ends_at: int
    labels: _containers.ScalarMap[str, str]
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., rule: _Optional[str] = ..., rules_version: _Optional[str] = ..., subject: _Optional[str] = ..., status: _Optional[_Union[AlertStatus, str]] = ..., severity: _Optional[_Union[AlertSeverity, str]] = ..., summary: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., starts_at: _Optional[int] = ..., ends_at: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...
