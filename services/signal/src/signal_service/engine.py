"""Bars in, target positions out: incremental features per symbol and the policy. Pure, no I/O."""

from __future__ import annotations

from decimal import Decimal

from trading.marketdata.v1 import marketdata_pb2
from trading.signal.v1 import signal_pb2
from trading_features import FeatureEngine, feature_hash
from trading_platform.decimals import to_proto
from trading_policy import Policy


class SignalEngine:
    def __init__(self, policy: Policy, strategy_id: str) -> None:
        self.policy = policy
        self.strategy_id = strategy_id
        self.features: dict[str, FeatureEngine] = {}

    def on_bar(self, bar: marketdata_pb2.Bar) -> signal_pb2.SignalGenerated | None:
        """The signal for this bar (without envelope), or None while the symbol's features warm up."""
        vector = self.features.setdefault(bar.symbol, FeatureEngine()).update(bar.close)
        if vector is None:
            return None
        weight = float(self.policy.predict(vector))
        return signal_pb2.SignalGenerated(
            symbol=bar.symbol,
            strategy_id=self.strategy_id,
            target_weight=weight,
            reference_price=to_proto(Decimal(repr(bar.close))),
            model_name=self.policy.model_name,
            model_version=self.policy.model_version,
            feature_hash=feature_hash(vector),
            bar_id=bar.envelope.message_id,
        )
