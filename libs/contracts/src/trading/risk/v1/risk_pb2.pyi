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
    __slots__ = ("state", "reason", "changed_at")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    state: TradingState
    reason: str
    changed_at: int
    def __init__(self, state: _Optional[_Union[TradingState, str]] = ..., reason: _Optional[str] = ..., changed_at: _Optional[int] = ...) -> None: ...

class GetLimitsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateLimitsRequest(_message.Message):
    __slots__ = ("limits", "actor", "reason")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    limits: RiskLimits
    actor: str
    reason: str
    def __init__(self, limits: _Optional[_Union[RiskLimits, _Mapping]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
