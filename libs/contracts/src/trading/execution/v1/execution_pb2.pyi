from trading.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionReportType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_REPORT_TYPE_UNSPECIFIED: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_PENDING_NEW: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_NEW: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_PARTIAL_FILL: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_FILL: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_CANCELED: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_EXPIRED: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_REPLACED: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_REJECTED: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_PENDING_CANCEL: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_DONE_FOR_DAY: _ClassVar[ExecutionReportType]
    EXECUTION_REPORT_TYPE_CANCEL_REJECTED: _ClassVar[ExecutionReportType]

class RefusalCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFUSAL_CODE_UNSPECIFIED: _ClassVar[RefusalCode]
    REFUSAL_CODE_NO_APPROVAL: _ClassVar[RefusalCode]
    REFUSAL_CODE_APPROVAL_MISMATCH: _ClassVar[RefusalCode]
    REFUSAL_CODE_STREAM_DOWN: _ClassVar[RefusalCode]
    REFUSAL_CODE_LEASE_NOT_HELD: _ClassVar[RefusalCode]
    REFUSAL_CODE_BROKER_REJECTED: _ClassVar[RefusalCode]
    REFUSAL_CODE_COMMAND_TOO_OLD: _ClassVar[RefusalCode]
    REFUSAL_CODE_UNRESOLVED: _ClassVar[RefusalCode]
    REFUSAL_CODE_INVALID_ORDER: _ClassVar[RefusalCode]
EXECUTION_REPORT_TYPE_UNSPECIFIED: ExecutionReportType
EXECUTION_REPORT_TYPE_PENDING_NEW: ExecutionReportType
EXECUTION_REPORT_TYPE_NEW: ExecutionReportType
EXECUTION_REPORT_TYPE_PARTIAL_FILL: ExecutionReportType
EXECUTION_REPORT_TYPE_FILL: ExecutionReportType
EXECUTION_REPORT_TYPE_CANCELED: ExecutionReportType
EXECUTION_REPORT_TYPE_EXPIRED: ExecutionReportType
EXECUTION_REPORT_TYPE_REPLACED: ExecutionReportType
EXECUTION_REPORT_TYPE_REJECTED: ExecutionReportType
EXECUTION_REPORT_TYPE_PENDING_CANCEL: ExecutionReportType
EXECUTION_REPORT_TYPE_DONE_FOR_DAY: ExecutionReportType
EXECUTION_REPORT_TYPE_CANCEL_REJECTED: ExecutionReportType
REFUSAL_CODE_UNSPECIFIED: RefusalCode
REFUSAL_CODE_NO_APPROVAL: RefusalCode
REFUSAL_CODE_APPROVAL_MISMATCH: RefusalCode
REFUSAL_CODE_STREAM_DOWN: RefusalCode
REFUSAL_CODE_LEASE_NOT_HELD: RefusalCode
REFUSAL_CODE_BROKER_REJECTED: RefusalCode
REFUSAL_CODE_COMMAND_TOO_OLD: RefusalCode
REFUSAL_CODE_UNRESOLVED: RefusalCode
REFUSAL_CODE_INVALID_ORDER: RefusalCode

class ExecutionReport(_message.Message):
    __slots__ = ("envelope", "report_type", "client_order_id", "broker_order_id", "symbol", "side", "order_quantity", "last_quantity", "last_price", "fill_id", "filled_quantity", "average_fill_price", "reason", "broker_ts", "refusal_code")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    REPORT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    BROKER_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LAST_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    FILL_ID_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BROKER_TS_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_CODE_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    report_type: ExecutionReportType
    client_order_id: str
    broker_order_id: str
    symbol: str
    side: _common_pb2.OrderSide
    order_quantity: _common_pb2.Decimal
    last_quantity: _common_pb2.Decimal
    last_price: _common_pb2.Decimal
    fill_id: str
    filled_quantity: _common_pb2.Decimal
    average_fill_price: _common_pb2.Decimal
    reason: str
    broker_ts: int
    refusal_code: RefusalCode
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., report_type: _Optional[_Union[ExecutionReportType, str]] = ..., client_order_id: _Optional[str] = ..., broker_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.OrderSide, str]] = ..., order_quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., last_quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., last_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., fill_id: _Optional[str] = ..., filled_quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., average_fill_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., reason: _Optional[str] = ..., broker_ts: _Optional[int] = ..., refusal_code: _Optional[_Union[RefusalCode, str]] = ...) -> None: ...

class ExecutionQualityMeasured(_message.Message):
    __slots__ = ("envelope", "client_order_id", "symbol", "submit_to_accept_ns", "submit_to_first_fill_ns", "submit_to_last_fill_ns", "arrival_price", "average_fill_price", "slippage_bps", "fill_ratio")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TO_ACCEPT_NS_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TO_FIRST_FILL_NS_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TO_LAST_FILL_NS_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_PRICE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    SLIPPAGE_BPS_FIELD_NUMBER: _ClassVar[int]
    FILL_RATIO_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    client_order_id: str
    symbol: str
    submit_to_accept_ns: int
    submit_to_first_fill_ns: int
    submit_to_last_fill_ns: int
    arrival_price: _common_pb2.Decimal
    average_fill_price: _common_pb2.Decimal
    slippage_bps: float
    fill_ratio: float
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., submit_to_accept_ns: _Optional[int] = ..., submit_to_first_fill_ns: _Optional[int] = ..., submit_to_last_fill_ns: _Optional[int] = ..., arrival_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., average_fill_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., slippage_bps: _Optional[float] = ..., fill_ratio: _Optional[float] = ...) -> None: ...

class BrokerConnectionChanged(_message.Message):
    __slots__ = ("envelope", "trading_connected", "trade_updates_connected", "reason")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    TRADING_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    TRADE_UPDATES_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    trading_connected: bool
    trade_updates_connected: bool
    reason: str
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., trading_connected: _Optional[bool] = ..., trade_updates_connected: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BrokerAccount(_message.Message):
    __slots__ = ("account_id", "cash", "equity", "buying_power", "status")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CASH_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    BUYING_POWER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    cash: _common_pb2.Decimal
    equity: _common_pb2.Decimal
    buying_power: _common_pb2.Decimal
    status: str
    def __init__(self, account_id: _Optional[str] = ..., cash: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., equity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., buying_power: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., status: _Optional[str] = ...) -> None: ...

class BrokerPosition(_message.Message):
    __slots__ = ("symbol", "quantity", "average_entry_price", "market_value")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_ENTRY_PRICE_FIELD_NUMBER: _ClassVar[int]
    MARKET_VALUE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quantity: _common_pb2.Decimal
    average_entry_price: _common_pb2.Decimal
    market_value: _common_pb2.Decimal
    def __init__(self, symbol: _Optional[str] = ..., quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., average_entry_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., market_value: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ...) -> None: ...

class BrokerOrder(_message.Message):
    __slots__ = ("client_order_id", "broker_order_id", "symbol", "side", "quantity", "filled_quantity", "average_fill_price", "status")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    BROKER_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    broker_order_id: str
    symbol: str
    side: _common_pb2.OrderSide
    quantity: _common_pb2.Decimal
    filled_quantity: _common_pb2.Decimal
    average_fill_price: _common_pb2.Decimal
    status: str
    def __init__(self, client_order_id: _Optional[str] = ..., broker_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.OrderSide, str]] = ..., quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., filled_quantity: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., average_fill_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., status: _Optional[str] = ...) -> None: ...

class GetBrokerPositionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBrokerPositionsResponse(_message.Message):
    __slots__ = ("positions",)
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[BrokerPosition]
    def __init__(self, positions: _Optional[_Iterable[_Union[BrokerPosition, _Mapping]]] = ...) -> None: ...

class GetBrokerOrdersRequest(_message.Message):
    __slots__ = ("status", "limit")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    status: str
    limit: int
    def __init__(self, status: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class GetBrokerOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[BrokerOrder]
    def __init__(self, orders: _Optional[_Iterable[_Union[BrokerOrder, _Mapping]]] = ...) -> None: ...
