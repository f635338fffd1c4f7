from trading.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_INITIALIZED: _ClassVar[OrderStatus]
    ORDER_STATUS_DENIED: _ClassVar[OrderStatus]
    ORDER_STATUS_SUBMITTED: _ClassVar[OrderStatus]
    ORDER_STATUS_ACCEPTED: _ClassVar[OrderStatus]
    ORDER_STATUS_REJECTED: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_PENDING_CANCEL: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELED: _ClassVar[OrderStatus]
    ORDER_STATUS_EXPIRED: _ClassVar[OrderStatus]

class OrderEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_EVENT_TYPE_UNSPECIFIED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_INITIALIZED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_DENIED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_SUBMITTED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_ACCEPTED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_REJECTED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_PARTIALLY_FILLED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_FILLED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_PENDING_CANCEL: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_CANCELED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_EXPIRED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_CANCEL_REJECTED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_TRANSITION_REJECTED: _ClassVar[OrderEventType]
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_INITIALIZED: OrderStatus
ORDER_STATUS_DENIED: OrderStatus
ORDER_STATUS_SUBMITTED: OrderStatus
ORDER_STATUS_ACCEPTED: OrderStatus
ORDER_STATUS_REJECTED: OrderStatus
ORDER_STATUS_PARTIALLY_FILLED: OrderStatus
ORDER_STATUS_FILLED: OrderStatus
ORDER_STATUS_PENDING_CANCEL: OrderStatus
ORDER_STATUS_CANCELED: OrderStatus
ORDER_STATUS_EXPIRED: OrderStatus
ORDER_EVENT_TYPE_UNSPECIFIED: OrderEventType
ORDER_EVENT_TYPE_INITIALIZED: OrderEventType
ORDER_EVENT_TYPE_DENIED: OrderEventType
ORDER_EVENT_TYPE_SUBMITTED: OrderEventType
ORDER_EVENT_TYPE_ACCEPTED: OrderEventType
ORDER_EVENT_TYPE_REJECTED: OrderEventType
ORDER_EVENT_TYPE_PARTIALLY_FILLED: OrderEventType
ORDER_EVENT_TYPE_FILLED: OrderEventType
ORDER_EVENT_TYPE_PENDING_CANCEL: OrderEventType
ORDER_EVENT_TYPE_CANCELED: OrderEventType
ORDER_EVENT_TYPE_EXPIRED: OrderEventType
ORDER_EVENT_TYPE_CANCEL_REJECTED: OrderEventType
ORDER_EVENT_TYPE_TRANSITION_REJECTED: OrderEventType

class OrderLineage(_message.Message):
    __slots__ = ("signal_id", "strategy_id", "model_version", "feature_hash", "risk_decision_id", "broker_order_id", "submitted_by")
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_HASH_FIELD_NUMBER: _ClassVar[int]
    RISK_DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    BROKER_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_BY_FIELD_NUMBER: _ClassVar[int]
    signal_id: str
    strategy_id: str
    model_version: str
    feature_hash: str
    risk_decision_id: str
    broker_order_id: str
    submitted_by: str
    def __init__(self, signal_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., model_version: _Optional[str] = ..., feature_hash: _Optional[str] = ..., risk_decision_id: _Optional[str] = ..., broker_order_id: _Optional[str] = ..., submitted_by: _Optional[str] = ...) -> None: ...

class SubmitOrder(_message.Message):
    __slots__ = ("client_order_id", "symbol", "side", "quantity", "order_type", "time_in_force", "limit_price", "stop_price", "lineage", "arrival_price", "trail_price", "trail_percent")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    symbol: str
    side: _common_pb2.OrderSide
    quantity: _common_pb2.Decimal
    order_type: _common_pb2.OrderType
    time_in_force: _common_pb2.TimeInForce
    limit_price: _common_pb2.Decimal
    stop_price: _common_pb2.Decimal
    lineage: OrderLineage
    arrival_price: _common_pb2.Decimal
    trail_price: _common_pb2.Decimal
    trail_percent: _common_pb2.Decimal
    def __init__(self, client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.OrderSide, str]] = ..., quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., order_type: _Optional[_Union[_common_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_common_pb2.TimeInForce, str]] = ..., limit_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., stop_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., lineage: _Optional[_Union[OrderLineage, _Mapping]] = ..., arrival_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., trail_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., trail_percent: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ...) -> None: ...

class CancelOrder(_message.Message):
    __slots__ = ("client_order_id", "reason", "requested_by")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    reason: str
    requested_by: str
    def __init__(self, client_order_id: _Optional[str] = ..., reason: _Optional[str] = ..., requested_by: _Optional[str] = ...) -> None: ...

class CancelAllOrders(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class OrderCommand(_message.Message):
    __slots__ = ("envelope", "submit_order", "cancel_order", "cancel_all_orders")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_ORDER_FIELD_NUMBER: _ClassVar[int]
    CANCEL_ORDER_FIELD_NUMBER: _ClassVar[int]
    CANCEL_ALL_ORDERS_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    submit_order: SubmitOrder
    cancel_order: CancelOrder
    cancel_all_orders: CancelAllOrders
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., submit_order: _Optional[_Union[SubmitOrder, _Mapping]] = ..., cancel_order: _Optional[_Union[CancelOrder, _Mapping]] = ..., cancel_all_orders: _Optional[_Union[CancelAllOrders, _Mapping]] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("client_order_id", "symbol", "side", "quantity", "order_type", "time_in_force", "limit_price", "stop_price", "status", "filled_quantity", "average_fill_price", "lineage", "fill_ids", "created_at", "updated_at", "reason", "trail_price", "trail_percent")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    FILL_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    symbol: str
    side: _common_pb2.OrderSide
    quantity: _common_pb2.Decimal
    order_type: _common_pb2.OrderType
    time_in_force: _common_pb2.TimeInForce
    limit_price: _common_pb2.Decimal
    stop_price: _common_pb2.Decimal
    status: OrderStatus
    filled_quantity: _common_pb2.Decimal
    average_fill_price: _common_pb2.Decimal
    lineage: OrderLineage
    fill_ids: _containers.RepeatedScalarFieldContainer[str]
    created_at: int
    updated_at: int
    reason: str
    trail_price: _common_pb2.Decimal
    trail_percent: _common_pb2.Decimal
    def __init__(self, client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.OrderSide, str]] = ..., quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., order_type: _Optional[_Union[_common_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_common_pb2.TimeInForce, str]] = ..., limit_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., stop_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., filled_quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., average_fill_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., lineage: _Optional[_Union[OrderLineage, _Mapping]] = ..., fill_ids: _Optional[_Iterable[str]] = ..., created_at: _Optional[int] = ..., updated_at: _Optional[int] = ..., reason: _Optional[str] = ..., trail_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., trail_percent: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ...) -> None: ...

class OrderEvent(_message.Message):
    __slots__ = ("envelope", "event_type", "client_order_id", "order", "last_quantity", "last_price", "fill_id", "reason")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    LAST_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    FILL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    event_type: OrderEventType
    client_order_id: str
    order: Order
    last_quantity: _common_pb2.Decimal
    last_price: _common_pb2.Decimal
    fill_id: str
    reason: str
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., event_type: _Optional[_Union[OrderEventType, str]] = ..., client_order_id: _Optional[str] = ..., order: _Optional[_Union[Order, _Mapping]] = ..., last_quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., last_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., fill_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class OrderBookSnapshot(_message.Message):
    __slots__ = ("envelope", "orders", "positions", "event_offsets", "handled_message_ids", "events_applied")
    class EventOffsetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    EVENT_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    HANDLED_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_APPLIED_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    event_offsets: _containers.ScalarMap[int, int]
    handled_message_ids: _containers.RepeatedScalarFieldContainer[str]
    events_applied: int
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ..., positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ..., event_offsets: _Optional[_Mapping[int, int]] = ..., handled_message_ids: _Optional[_Iterable[str]] = ..., events_applied: _Optional[int] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("symbol", "quantity", "average_entry_price", "realized_pnl", "unrealized_pnl", "market_price")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_ENTRY_PRICE_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    MARKET_PRICE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quantity: _common_pb2.Decimal
    average_entry_price: _common_pb2.Decimal
    realized_pnl: _common_pb2.Decimal
    unrealized_pnl: _common_pb2.Decimal
    market_price: _common_pb2.Decimal
    def __init__(self, symbol: _Optional[str] = ..., quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., average_entry_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., realized_pnl: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., unrealized_pnl: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., market_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ...) -> None: ...

class PositionChanged(_message.Message):
    __slots__ = ("envelope", "position", "client_order_id", "fill_id")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    FILL_ID_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    position: Position
    client_order_id: str
    fill_id: str
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., position: _Optional[_Union[Position, _Mapping]] = ..., client_order_id: _Optional[str] = ..., fill_id: _Optional[str] = ...) -> None: ...

class ReconciliationCompleted(_message.Message):
    __slots__ = ("envelope", "matched", "mismatches", "trading_blocked", "open_orders", "broker_open_orders")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    TRADING_BLOCKED_FIELD_NUMBER: _ClassVar[int]
    OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    BROKER_OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    matched: bool
    mismatches: _containers.RepeatedScalarFieldContainer[str]
    trading_blocked: bool
    open_orders: int
    broker_open_orders: int
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., matched: _Optional[bool] = ..., mismatches: _Optional[_Iterable[str]] = ..., trading_blocked: _Optional[bool] = ..., open_orders: _Optional[int] = ..., broker_open_orders: _Optional[int] = ...) -> None: ...

class SubmitOrderRequest(_message.Message):
    __slots__ = ("symbol", "side", "quantity", "order_type", "time_in_force", "limit_price", "stop_price", "decision_id", "strategy_id", "trail_price", "trail_percent")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    side: _common_pb2.OrderSide
    quantity: _common_pb2.Decimal
    order_type: _common_pb2.OrderType
    time_in_force: _common_pb2.TimeInForce
    limit_price: _common_pb2.Decimal
    stop_price: _common_pb2.Decimal
    decision_id: str
    strategy_id: str
    trail_price: _common_pb2.Decimal
    trail_percent: _common_pb2.Decimal
    def __init__(self, symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.OrderSide, str]] = ..., quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., order_type: _Optional[_Union[_common_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_common_pb2.TimeInForce, str]] = ..., limit_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., stop_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., decision_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., trail_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., trail_percent: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ...) -> None: ...

class SubmitOrderResponse(_message.Message):
    __slots__ = ("order", "accepted", "reason_code", "reason")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    order: Order
    accepted: bool
    reason_code: str
    reason: str
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ..., accepted: _Optional[bool] = ..., reason_code: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("client_order_id", "reason")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    reason: str
    def __init__(self, client_order_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("accepted", "reason")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reason: str
    def __init__(self, accepted: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("client_order_id",)
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    def __init__(self, client_order_id: _Optional[str] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("symbol", "statuses", "limit")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    statuses: _containers.RepeatedScalarFieldContainer[OrderStatus]
    limit: int
    def __init__(self, symbol: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[OrderStatus, str]]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    def __init__(self, orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ...) -> None: ...

class ListPositionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPositionsResponse(_message.Message):
    __slots__ = ("positions", "realized_pnl", "unrealized_pnl")
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    realized_pnl: _common_pb2.Decimal
    unrealized_pnl: _common_pb2.Decimal
    def __init__(self, positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ..., realized_pnl: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., unrealized_pnl: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ...) -> None: ...
