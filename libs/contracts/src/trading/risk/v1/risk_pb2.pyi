from trading.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TradingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRADING_STATE_UNSPECIFIED: _ClassVar[TradingState]
    TRADING_STATE_ACTIVE: _ClassVar[TradingState]
    TRADING_STATE_REDUCING: _ClassVar[TradingState]
    TRADING_STATE_HALTED: _ClassVar[TradingState]

class ReasonCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_CODE_UNSPECIFIED: _ClassVar[ReasonCode]
    REASON_CODE_APPROVED: _ClassVar[ReasonCode]
    REASON_CODE_TRADING_HALTED: _ClassVar[ReasonCode]
    REASON_CODE_REDUCING_ONLY: _ClassVar[ReasonCode]
    REASON_CODE_MAX_ORDER_QUANTITY: _ClassVar[ReasonCode]
    REASON_CODE_MAX_ORDER_NOTIONAL: _ClassVar[ReasonCode]
    REASON_CODE_PRICE_COLLAR: _ClassVar[ReasonCode]
    REASON_CODE_MAX_POSITION: _ClassVar[ReasonCode]
    REASON_CODE_GROSS_EXPOSURE: _ClassVar[ReasonCode]
    REASON_CODE_NET_EXPOSURE: _ClassVar[ReasonCode]
    REASON_CODE_BUYING_POWER: _ClassVar[ReasonCode]
    REASON_CODE_ORDER_RATE: _ClassVar[ReasonCode]
    REASON_CODE_ORDERS_PER_DAY: _ClassVar[ReasonCode]
    REASON_CODE_DAILY_LOSS: _ClassVar[ReasonCode]
    REASON_CODE_DRAWDOWN: _ClassVar[ReasonCode]
    REASON_CODE_RESTRICTED_SYMBOL: _ClassVar[ReasonCode]
    REASON_CODE_DUPLICATE_ORDER: _ClassVar[ReasonCode]
    REASON_CODE_STALE_MARKET_DATA: _ClassVar[ReasonCode]
    REASON_CODE_STALE_RISK_STATE: _ClassVar[ReasonCode]
    REASON_CODE_INVALID_ORDER: _ClassVar[ReasonCode]

class AlertSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_SEVERITY_UNSPECIFIED: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_INFO: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_WARNING: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_CRITICAL: _ClassVar[AlertSeverity]

class ChangeEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_EVENT_TYPE_UNSPECIFIED: _ClassVar[ChangeEventType]
    CHANGE_EVENT_TYPE_REQUESTED: _ClassVar[ChangeEventType]
    CHANGE_EVENT_TYPE_APPROVED: _ClassVar[ChangeEventType]
    CHANGE_EVENT_TYPE_REFUSED: _ClassVar[ChangeEventType]
    CHANGE_EVENT_TYPE_EXPIRED: _ClassVar[ChangeEventType]
TRADING_STATE_UNSPECIFIED: TradingState
TRADING_STATE_ACTIVE: TradingState
TRADING_STATE_REDUCING: TradingState
TRADING_STATE_HALTED: TradingState
REASON_CODE_UNSPECIFIED: ReasonCode
REASON_CODE_APPROVED: ReasonCode
REASON_CODE_TRADING_HALTED: ReasonCode
REASON_CODE_REDUCING_ONLY: ReasonCode
REASON_CODE_MAX_ORDER_QUANTITY: ReasonCode
REASON_CODE_MAX_ORDER_NOTIONAL: ReasonCode
REASON_CODE_PRICE_COLLAR: ReasonCode
REASON_CODE_MAX_POSITION: ReasonCode
REASON_CODE_GROSS_EXPOSURE: ReasonCode
REASON_CODE_NET_EXPOSURE: ReasonCode
REASON_CODE_BUYING_POWER: ReasonCode
REASON_CODE_ORDER_RATE: ReasonCode
REASON_CODE_ORDERS_PER_DAY: ReasonCode
REASON_CODE_DAILY_LOSS: ReasonCode
REASON_CODE_DRAWDOWN: ReasonCode
REASON_CODE_RESTRICTED_SYMBOL: ReasonCode
REASON_CODE_DUPLICATE_ORDER: ReasonCode
REASON_CODE_STALE_MARKET_DATA: ReasonCode
REASON_CODE_STALE_RISK_STATE: ReasonCode
REASON_CODE_INVALID_ORDER: ReasonCode
ALERT_SEVERITY_UNSPECIFIED: AlertSeverity
ALERT_SEVERITY_INFO: AlertSeverity
ALERT_SEVERITY_WARNING: AlertSeverity
ALERT_SEVERITY_CRITICAL: AlertSeverity
CHANGE_EVENT_TYPE_UNSPECIFIED: ChangeEventType
CHANGE_EVENT_TYPE_REQUESTED: ChangeEventType
CHANGE_EVENT_TYPE_APPROVED: ChangeEventType
CHANGE_EVENT_TYPE_REFUSED: ChangeEventType
CHANGE_EVENT_TYPE_EXPIRED: ChangeEventType

class CheckOrderRequest(_message.Message):
    __slots__ = ("envelope", "client_order_id", "symbol", "side", "quantity", "order_type", "limit_price", "reference_price", "strategy_id", "dry_run")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PRICE_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    client_order_id: str
    symbol: str
    side: _common_pb2.OrderSide
    quantity: _common_pb2.Decimal
    order_type: _common_pb2.OrderType
    limit_price: _common_pb2.Decimal
    reference_price: _common_pb2.Decimal
    strategy_id: str
    dry_run: bool
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.OrderSide, str]] = ..., quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., order_type: _Optional[_Union[_common_pb2.OrderType, str]] = ..., limit_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., reference_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., strategy_id: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RiskDecision(_message.Message):
    __slots__ = ("envelope", "client_order_id", "approved", "reason_code", "reason", "trading_state", "limits_version", "symbol", "side", "quantity")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_VERSION_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    client_order_id: str
    approved: bool
    reason_code: ReasonCode
    reason: str
    trading_state: TradingState
    limits_version: str
    symbol: str
    side: _common_pb2.OrderSide
    quantity: _common_pb2.Decimal
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., client_order_id: _Optional[str] = ..., approved: _Optional[bool] = ..., reason_code: _Optional[_Union[ReasonCode, str]] = ..., reason: _Optional[str] = ..., trading_state: _Optional[_Union[TradingState, str]] = ..., limits_version: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.OrderSide, str]] = ..., quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ...) -> None: ...

class TradingStateChanged(_message.Message):
    __slots__ = ("envelope", "previous_state", "state", "reason", "actor", "cancel_open_orders")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CANCEL_OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    previous_state: TradingState
    state: TradingState
    reason: str
    actor: str
    cancel_open_orders: bool
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., previous_state: _Optional[_Union[TradingState, str]] = ..., state: _Optional[_Union[TradingState, str]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ..., cancel_open_orders: _Optional[bool] = ...) -> None: ...

class RiskAlertRaised(_message.Message):
    __slots__ = ("envelope", "kind", "severity", "message", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    kind: str
    severity: AlertSeverity
    message: str
    details: _containers.ScalarMap[str, str]
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., kind: _Optional[str] = ..., severity: _Optional[_Union[AlertSeverity, str]] = ..., message: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RiskLimits(_message.Message):
    __slots__ = ("version", "max_order_quantity", "max_order_notional", "price_collar", "max_position_notional", "max_gross_exposure", "max_net_exposure", "max_orders_per_second", "max_orders_per_day", "max_daily_loss", "max_drawdown", "restricted_symbols", "max_market_data_age_ms")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDER_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    PRICE_COLLAR_FIELD_NUMBER: _ClassVar[int]
    MAX_POSITION_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    MAX_GROSS_EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    MAX_NET_EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDERS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDERS_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    MAX_DAILY_LOSS_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    RESTRICTED_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    MAX_MARKET_DATA_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    version: str
    max_order_quantity: _common_pb2.Decimal
    max_order_notional: _common_pb2.Decimal
    price_collar: _common_pb2.Decimal
    max_position_notional: _common_pb2.Decimal
    max_gross_exposure: _common_pb2.Decimal
    max_net_exposure: _common_pb2.Decimal
    max_orders_per_second: int
    max_orders_per_day: int
    max_daily_loss: _common_pb2.Decimal
    max_drawdown: _common_pb2.Decimal
    restricted_symbols: _containers.RepeatedScalarFieldContainer[str]
    max_market_data_age_ms: int
    def __init__(self, version: _Optional[str] = ..., max_order_quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., max_order_notional: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., price_collar: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., max_position_notional: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., max_gross_exposure: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., max_net_exposure: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., max_orders_per_second: _Optional[int] = ..., max_orders_per_day: _Optional[int] = ..., max_daily_loss: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., max_drawdown: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., restricted_symbols: _Optional[_Iterable[str]] = ..., max_market_data_age_ms: _Optional[int] = ...) -> None: ...

class LimitsChanged(_message.Message):
    __slots__ = ("envelope", "previous", "limits", "actor", "reason")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    previous: RiskLimits
    limits: RiskLimits
    actor: str
    reason: str
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., previous: _Optional[_Union[RiskLimits, _Mapping]] = ..., limits: _Optional[_Union[RiskLimits, _Mapping]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetTradingStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetTradingStateRequest(_message.Message):
    __slots__ = ("state", "reason", "actor", "cancel_open_orders")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CANCEL_OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    state: TradingState
    reason: str
    actor: str
    cancel_open_orders: bool
    def __init__(self, state: _Optional[_Union[TradingState, str]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ..., cancel_open_orders: _Optional[bool] = ...) -> None: ...

class TradingStateResponse(_message.Message):
    __slots__ = ("state", "reason", "changed_at", "outcome")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    state: TradingState
    reason: str
    changed_at: int
    outcome: ChangeOutcome
    def __init__(self, state: _Optional[_Union[TradingState, str]] = ..., reason: _Optional[str] = ..., changed_at: _Optional[int] = ..., outcome: _Optional[_Union[ChangeOutcome, _Mapping]] = ...) -> None: ...

class GetLimitsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateLimitsRequest(_message.Message):
    __slots__ = ("limits", "actor", "reason", "replace_restricted_symbols")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPLACE_RESTRICTED_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    limits: RiskLimits
    actor: str
    reason: str
    replace_restricted_symbols: bool
    def __init__(self, limits: _Optional[_Union[RiskLimits, _Mapping]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., replace_restricted_symbols: _Optional[bool] = ...) -> None: ...

class ChangeOutcome(_message.Message):
    __slots__ = ("applied", "change_id", "content_hash", "pending", "expires_at")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    change_id: str
    content_hash: str
    pending: ProposedChange
    expires_at: int
    def __init__(self, applied: _Optional[bool] = ..., change_id: _Optional[str] = ..., content_hash: _Optional[str] = ..., pending: _Optional[_Union[ProposedChange, _Mapping]] = ..., expires_at: _Optional[int] = ...) -> None: ...

class UpdateLimitsResponse(_message.Message):
    __slots__ = ("limits", "outcome")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    limits: RiskLimits
    outcome: ChangeOutcome
    def __init__(self, limits: _Optional[_Union[RiskLimits, _Mapping]] = ..., outcome: _Optional[_Union[ChangeOutcome, _Mapping]] = ...) -> None: ...

class TradingStateChange(_message.Message):
    __slots__ = ("from_state", "state")
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    from_state: TradingState
    state: TradingState
    def __init__(self, from_state: _Optional[_Union[TradingState, str]] = ..., state: _Optional[_Union[TradingState, str]] = ...) -> None: ...

class LimitsRaise(_message.Message):
    __slots__ = ("raised", "unrestricted_symbols", "version")
    RAISED_FIELD_NUMBER: _ClassVar[int]
    UNRESTRICTED_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    raised: RiskLimits
    unrestricted_symbols: _containers.RepeatedScalarFieldContainer[str]
    version: str
    def __init__(self, raised: _Optional[_Union[RiskLimits, _Mapping]] = ..., unrestricted_symbols: _Optional[_Iterable[str]] = ..., version: _Optional[str] = ...) -> None: ...

class ProposedChange(_message.Message):
    __slots__ = ("limits", "trading_state")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    limits: LimitsRaise
    trading_state: TradingStateChange
    def __init__(self, limits: _Optional[_Union[LimitsRaise, _Mapping]] = ..., trading_state: _Optional[_Union[TradingStateChange, _Mapping]] = ...) -> None: ...

class RiskChangeRecorded(_message.Message):
    __slots__ = ("envelope", "change_id", "event_type", "change", "content_hash", "actor", "requested_by", "reason", "requested_at", "expires_at")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    change_id: str
    event_type: ChangeEventType
    change: ProposedChange
    content_hash: str
    actor: str
    requested_by: str
    reason: str
    requested_at: int
    expires_at: int
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., change_id: _Optional[str] = ..., event_type: _Optional[_Union[ChangeEventType, str]] = ..., change: _Optional[_Union[ProposedChange, _Mapping]] = ..., content_hash: _Optional[str] = ..., actor: _Optional[str] = ..., requested_by: _Optional[str] = ..., reason: _Optional[str] = ..., requested_at: _Optional[int] = ..., expires_at: _Optional[int] = ...) -> None: ...

class ApproveChangeRequest(_message.Message):
    __slots__ = ("change_id", "content_hash", "reason")
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    change_id: str
    content_hash: str
    reason: str
    def __init__(self, change_id: _Optional[str] = ..., content_hash: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ApproveChangeResponse(_message.Message):
    __slots__ = ("change_id", "change", "limits", "state")
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    change_id: str
    change: ProposedChange
    limits: RiskLimits
    state: TradingState
    def __init__(self, change_id: _Optional[str] = ..., change: _Optional[_Union[ProposedChange, _Mapping]] = ..., limits: _Optional[_Union[RiskLimits, _Mapping]] = ..., state: _Optional[_Union[TradingState, str]] = ...) -> None: ...

class ListPendingChangesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPendingChangesResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[RiskChangeRecorded]
    def __init__(self, changes: _Optional[_Iterable[_Union[RiskChangeRecorded, _Mapping]]] = ...) -> None: ...

class StartOfDayEquityRecorded(_message.Message):
    __slots__ = ("envelope", "trading_day", "equity", "book_pnl", "account_id")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    TRADING_DAY_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    BOOK_PNL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    trading_day: str
    equity: _common_pb2.Decimal
    book_pnl: _common_pb2.Decimal
    account_id: str
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., trading_day: _Optional[str] = ..., equity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., book_pnl: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., account_id: _Optional[str] = ...) -> None: ...
