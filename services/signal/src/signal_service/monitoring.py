"""Prediction monitoring of a served RL policy: what it sees against what it was trained on, what it does, and what
it earns against what validation promised.

Per model version, over a rolling window of bars (all symbols):
- feature drift: each feature standardised with the training scaler from the manifest; its mean over the window is
  the shift in training standard deviations (0 = as in training), its std the spread ratio (1 = as in training);
- action distribution: mean, std and a 10-bin histogram over the action bounds;
- realised reward: per symbol, the previous action times the log return since (the environment's reward before
  costs), averaged, against the manifest's `expected_reward_per_step` from validation.
Every `report_every` observations a `PredictionMonitorReport` goes to `signal.monitoring.v1` and the gauges are set;
a shift beyond `drift_threshold` marks the report as an alert.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from prometheus_client import Gauge
from trading.signal.v1 import signal_pb2
from trading_features import FEATURE_NAMES

DRIFT = Gauge("signal_feature_drift", "mean of the standardised feature over the window", ["role", "feature"])
ACTION_MEAN = Gauge("signal_action_mean", "mean policy action over the window", ["role"])
REWARD = Gauge("signal_realised_reward", "mean realised reward per bar over the window", ["role"])
EXPECTED = Gauge("signal_expected_reward", "validation reward per bar from the manifest", ["role"])
BINS = 10


class PredictionMonitor:
    def __init__(
        self,
        manifest: dict[str, Any],
        model_name: str,
        model_version: str,
        role: str,
        window: int = 500,
        report_every: int = 100,
        drift_threshold: float = 1.0,
    ) -> None:
        scaler = manifest["observation"]["scaler"]
        self.mean = np.asarray(scaler["mean"], dtype=np.float64)
        self.std = np.asarray(scaler["std"], dtype=np.float64)
        self.low = float(manifest["action"]["low"])
        self.high = float(manifest["action"]["high"])
        self.expected = float(manifest.get("expected_reward_per_step", 0.0))
        self.model_name, self.model_version, self.role = model_name, model_version, role
        self.report_every = report_every
        self.drift_threshold = drift_threshold
        self.features: deque[np.ndarray] = deque(maxlen=window)
        self.actions: deque[float] = deque(maxlen=window)
        self.rewards: deque[float] = deque(maxlen=window)
        self.last: dict[str, tuple[float, float]] = {}  # symbol -> (action, close)
        self.count = 0

    def observe(
        self, symbol: str, features: np.ndarray, action: float, close: float
    ) -> signal_pb2.PredictionMonitorReport | None:
        """Record one prediction; every `report_every` of them, the report (without envelope)."""
        self.features.append((np.asarray(features, dtype=np.float64) - self.mean) / self.std)
        self.actions.append(action)
        previous = self.last.get(symbol)
        if previous is not None and previous[1] > 0 and close > 0:
            self.rewards.append(previous[0] * math.log(close / previous[1]))
        self.last[symbol] = (action, close)
        self.count += 1
        return self.report() if self.count % self.report_every == 0 else None

    def report(self) -> signal_pb2.PredictionMonitorReport:
        scaled = np.array(self.features)
        shifts = scaled.mean(axis=0)
        spreads = scaled.std(axis=0)
        actions = np.array(self.actions)
        histogram, _ = np.histogram(np.clip(actions, self.low, self.high), bins=BINS, range=(self.low, self.high))
        realised = float(np.mean(self.rewards)) if self.rewards else 0.0
        max_drift = float(np.max(np.abs(shifts)))
        for name, shift in zip(FEATURE_NAMES, shifts, strict=True):
            DRIFT.labels(self.role, name).set(float(shift))
        ACTION_MEAN.labels(self.role).set(float(actions.mean()))
        REWARD.labels(self.role).set(realised)
        EXPECTED.labels(self.role).set(self.expected)
        return signal_pb2.PredictionMonitorReport(
            model_name=self.model_name,
            model_version=self.model_version,
            role=self.role,
            observations=len(actions),
            drift=[
                signal_pb2.FeatureDrift(feature=name, mean_shift=float(shift), std_ratio=float(spread))
                for name, shift, spread in zip(FEATURE_NAMES, shifts, spreads, strict=True)
            ],
            max_drift=max_drift,
            drift_alert=max_drift > self.drift_threshold,
            action_mean=float(actions.mean()),
            action_std=float(actions.std()),
            action_histogram=(histogram / max(1, len(actions))).tolist(),
            realised_reward=realised,
            expected_reward=self.expected,
        )
