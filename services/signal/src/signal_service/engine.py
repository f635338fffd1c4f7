"""Bars in, features out, and the signal message for a decision. Pure, no I/O: where the policy runs (in process or
on Ray) is the app's business."""

from __future__ import annotations

import uuid
from decimal import Decimal

import numpy as np
from trading.marketdata.v1 import marketdata_pb2
from trading.signal.v1 import signal_pb2
from trading_features import FeatureEngine, feature_hash
from trading_platform.decimals import to_proto

SIGNAL_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "trading.signal.v1.SignalGenerated")


def signal_id(signal: signal_pb2.SignalGenerated) -> str:
    """The signal id (its envelope.message_id): derived from what the decision is about, never random, so a bar
    delivered again (a crash before its offset was committed, a redelivery) yields the same signal id, and so the
    same client order id downstream. The parts: strategy, model version, role, symbol and the bar's time (the bar's
    id when it has none)."""
    when = str(signal.bar_ts) if signal.bar_ts else f"bar:{signal.bar_id}"
    role = "shadow" if signal.shadow else "live"
    parts = (signal.strategy_id, signal.model_version, role, signal.symbol, when)
    return str(uuid.uuid5(SIGNAL_IDS, "\x1f".join(parts)))


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
            bar_ts=bar.envelope.ts_event,
            shadow=role == "shadow",
        )
