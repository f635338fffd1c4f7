"""Signal wiring: bars from the bus, the policy, signals on signal.signals.v1 (caused by their bar)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from prometheus_client import Histogram
from trading.signal.v1 import signal_pb2, signal_pb2_grpc
from trading_platform.envelope import new_envelope
from trading_platform.messaging import ConsumedMessage, Consumer, Publisher, ensure_topics
from trading_platform.rpc import Servicer
from trading_platform.service import ServiceParts
from trading_policy import BaselinePolicy

from signal_service.config import SignalSettings
from signal_service.engine import SignalEngine

BAR_TO_SIGNAL = Histogram(
    "signal_bar_to_signal_seconds",
    "bar consumed to signal published",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
)


def load_policy(settings: SignalSettings) -> Any:
    if settings.signal.model_registry is not None:
        raise NotImplementedError(
            "serving a registered RL policy is issue 5 and not built yet; unset TRADING_SIGNAL__MODEL_REGISTRY to "
            "serve the baseline policy"
        )
    return BaselinePolicy(max_weight=settings.signal.max_weight)


class SignalApp(signal_pb2_grpc.SignalServiceServicer):
    def __init__(self, settings: SignalSettings) -> None:
        self.settings = settings
        self.engine = SignalEngine(load_policy(settings), settings.signal.strategy_id)
        kafka = settings.kafka
        self.publisher = Publisher(
            kafka.bootstrap_servers, "signal", namespace=kafka.namespace, shadow=settings.deployment.shadow
        )
        self.consumer = Consumer(
            kafka.bootstrap_servers,
            "signal",
            ["marketdata.bars.v1"],
            self.on_bar,
            publisher=self.publisher,
            namespace=kafka.namespace,
            shadow=settings.deployment.shadow,
            group_options=kafka.group_options(),
        )
        self.loaded_at = time.time_ns()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        kafka = self.settings.kafka
        await ensure_topics(
            kafka.bootstrap_servers,
            ["marketdata.bars.v1", "signal.signals.v1", "signal.shadow.v1"],
            namespace=kafka.namespace,
            shadow=self.settings.deployment.shadow,
        )
        await self.publisher.start()
        await self.consumer.start()
        self.task = asyncio.create_task(self.consumer.run())

    async def stop(self) -> None:
        await self.consumer.stop()
        if self.task:
            await self.task
        await self.consumer.close()
        await self.publisher.stop()

    async def on_bar(self, message: ConsumedMessage) -> None:
        started = time.perf_counter()
        signal = self.engine.on_bar(message.value)  # type: ignore[arg-type]
        if signal is None:
            return
        signal.envelope.CopyFrom(new_envelope("signal", cause=message.value))
        await self.publisher.publish("signal.signals.v1", signal, key=signal.symbol)
        BAR_TO_SIGNAL.observe(time.perf_counter() - started)

    async def Predict(self, request: signal_pb2.PredictRequest, context: Any) -> signal_pb2.SignalGenerated:
        engine = SignalEngine(self.engine.policy, self.engine.strategy_id)
        signal = None
        for bar in request.bars:
            signal = engine.on_bar(bar)
        if signal is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not enough bars to compute features (21 needed)")
            raise AssertionError("abort raises")
        signal.envelope.CopyFrom(new_envelope("signal"))
        return signal

    async def GetModelInfo(self, request: Any, context: Any) -> signal_pb2.ModelInfo:
        policy = self.engine.policy
        return signal_pb2.ModelInfo(
            model_name=policy.model_name,
            model_version=policy.model_version,
            feature_names=list(policy.feature_names),
            loaded_at=self.loaded_at,
        )


async def build(settings: SignalSettings) -> ServiceParts:
    app = SignalApp(settings)
    return ServiceParts(
        components=[app],
        servicers=[
            Servicer(signal_pb2_grpc.add_SignalServiceServicer_to_server, app, "trading.signal.v1.SignalService")
        ],
    )
