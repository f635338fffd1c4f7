from trading.common.v1 import common_pb2 as _common_pb2
from trading.marketdata.v1 import marketdata_pb2 as _marketdata_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignalGenerated(_message.Message):
    __slots__ = ("envelope", "symbol", "strategy_id", "target_weight", "reference_price", "model_name", "model_version", "feature_hash", "bar_id", "shadow", "bar_ts")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PRICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_HASH_FIELD_NUMBER: _ClassVar[int]
    BAR_ID_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    BAR_TS_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    symbol: str
    strategy_id: str
    target_weight: float
    reference_price: _common_pb2.Decimal
    model_name: str
    model_version: str
    feature_hash: str
    bar_id: str
    shadow: bool
    bar_ts: int
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., symbol: _Optional[str] = ..., strategy_id: _Optional[str] = ..., target_weight: _Optional[float] = ..., reference_price: _Optional[_Union[_common_pb2.Decimal, _Mapping]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., feature_hash: _Optional[str] = ..., bar_id: _Optional[str] = ..., shadow: _Optional[bool] = ..., bar_ts: _Optional[int] = ...) -> None: ...

class ModelChanged(_message.Message):
    __slots__ = ("envelope", "role", "model_name", "previous_version", "model_version", "content_hash", "reason")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    role: str
    model_name: str
    previous_version: str
    model_version: str
    content_hash: str
    reason: str
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., role: _Optional[str] = ..., model_name: _Optional[str] = ..., previous_version: _Optional[str] = ..., model_version: _Optional[str] = ..., content_hash: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class FeatureDrift(_message.Message):
    __slots__ = ("feature", "mean_shift", "std_ratio")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    MEAN_SHIFT_FIELD_NUMBER: _ClassVar[int]
    STD_RATIO_FIELD_NUMBER: _ClassVar[int]
    feature: str
    mean_shift: float
    std_ratio: float
    def __init__(self, feature: _Optional[str] = ..., mean_shift: _Optional[float] = ..., std_ratio: _Optional[float] = ...) -> None: ...

class PredictionMonitorReport(_message.Message):
    __slots__ = ("envelope", "model_name", "model_version", "role", "observations", "drift", "max_drift", "drift_alert", "action_mean", "action_std", "action_histogram", "realised_reward", "expected_reward")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    MAX_DRIFT_FIELD_NUMBER: _ClassVar[int]
    DRIFT_ALERT_FIELD_NUMBER: _ClassVar[int]
    ACTION_MEAN_FIELD_NUMBER: _ClassVar[int]
    ACTION_STD_FIELD_NUMBER: _ClassVar[int]
    ACTION_HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    REALISED_REWARD_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REWARD_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    model_name: str
    model_version: str
    role: str
    observations: int
    drift: _containers.RepeatedCompositeFieldContainer[FeatureDrift]
    max_drift: float
    drift_alert: bool
    action_mean: float
    action_std: float
    action_histogram: _containers.RepeatedScalarFieldContainer[float]
    realised_reward: float
    expected_reward: float
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., role: _Optional[str] = ..., observations: _Optional[int] = ..., drift: _Optional[_Iterable[_Union[FeatureDrift, _Mapping]]] = ..., max_drift: _Optional[float] = ..., drift_alert: _Optional[bool] = ..., action_mean: _Optional[float] = ..., action_std: _Optional[float] = ..., action_histogram: _Optional[_Iterable[float]] = ..., realised_reward: _Optional[float] = ..., expected_reward: _Optional[float] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("symbol", "bars")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    bars: _containers.RepeatedCompositeFieldContainer[_marketdata_pb2.Bar]
    def __init__(self, symbol: _Optional[str] = ..., bars: _Optional[_Iterable[_Union[_marketdata_pb2.Bar, _Mapping]]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_name", "model_version", "content_hash", "feature_names", "shadow_model_version", "loaded_at")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    SHADOW_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    content_hash: str
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    shadow_model_version: str
    loaded_at: int
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., content_hash: _Optional[str] = ..., feature_names: _Optional[_Iterable[str]] = ..., shadow_model_version: _Optional[str] = ..., loaded_at: _Optional[int] = ...) -> None: ...
