"""Bars in, features out, and the signal message for a decision. Pure, no I/O: where the policy runs (in process or
on Ray) is the app's business."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from trading.marketdata.v1 import marketdata_pb2
from trading.signal.v1 import signal_pb2
from trading_features import FeatureEngine, feature_hash
from trading_platform.decimals import to_proto


class SignalEngine:
    def __init__(self, strategy_id: str) -> None:
        self.strategy_id = strategy_id
        self.features: dict[str, FeatureEngine] = {}
        # The last target weight per symbol and role ("live", "shadow"): the policy's current position.
        self.positions: dict[str, dict[str, float]] = {"live": {}, "shadow": {}}

    def on_bar(self, bar: marketdata_pb2.Bar) -> np.ndarray | None:
        """The symbol's feature vector after this bar, or None while its features warm up."""
        return self.features.setdefault(bar.symbol, FeatureEngine()).update(bar.close)

    def position(self, role: str, symbol: str) -> float:
        return self.positions[role].get(symbol, 0.0)

    def signal(
        self,
        bar: marketdata_pb2.Bar,
        vector: np.ndarray,
        weight: float,
        model_name: str,
        model_version: str,
        role: str = "live",
    ) -> signal_pb2.SignalGenerated:
        """The signal (without envelope) for a decision, recorded as the role's new position in the symbol."""
        self.positions[role][bar.symbol] = weight
        return signal_pb2.SignalGenerated(
            symbol=bar.symbol,
            strategy_id=self.strategy_id,
            target_weight=weight,
            reference_price=to_proto(Decimal(repr(bar.close))),
            model_name=model_name,
            model_version=model_version,
            feature_hash=feature_hash(vector),
            bar_id=bar.envelope.message_id,
            shadow=role == "shadow",
        )
