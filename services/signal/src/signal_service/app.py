"""Signal wiring: bars from the bus, features, the live policy (and the shadow one) on Ray, signals on the bus.

Live signals go to signal.signals.v1, the shadow policy's to signal.shadow.v1, both caused by their bar. With a model
registry configured, a watcher polls the registry's stage pointers and hot-swaps the live or shadow policy when one
moves (`tradectl models promote`), announcing each change on signal.models.v1; prediction monitoring reports go to
signal.monitoring.v1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import grpc
import numpy as np
from prometheus_client import Histogram
from trading.marketdata.v1 import marketdata_pb2
from trading.signal.v1 import signal_pb2, signal_pb2_grpc
from trading_features import FEATURE_NAMES
from trading_platform.envelope import new_envelope
from trading_platform.messaging import ConsumedMessage, Consumer, Publisher, ensure_topics
from trading_platform.observability import get_logger
from trading_platform.rpc import Servicer
from trading_platform.service import ServiceParts
from trading_policy import ModelRegistry, RegistryError

from signal_service import serving
from signal_service.config import SignalSettings
from signal_service.engine import SignalEngine, signal_id
from signal_service.monitoring import PredictionMonitor
from signal_service.serving import PolicySlots, ServedPolicy

log = get_logger("signal")
BAR_TO_SIGNAL = Histogram(
    "signal_bar_to_signal_seconds",
    "bar consumed to signal published",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
)
TOPICS = ["marketdata.bars.v1", "signal.signals.v1", "signal.shadow.v1", "signal.models.v1", "signal.monitoring.v1"]


class SignalApp(signal_pb2_grpc.SignalServiceServicer):
    def __init__(self, settings: SignalSettings) -> None:
        self.settings = settings
        self.config = settings.signal
        self.engine = SignalEngine(self.config.strategy_id)
        self.registry = ModelRegistry(self.config.model_registry) if self.config.model_registry else None
        self.slots: PolicySlots | None = None
        self.monitors: dict[str, PredictionMonitor] = {}
        kafka = settings.kafka
        self.publisher = Publisher(
            kafka.connection(),
            "signal",
            namespace=kafka.namespace,
            shadow=settings.deployment.shadow,
            # up to SIGNAL__MAX_IN_FLIGHT signals outstanding at once (about 400 bytes each): one batch holds them
            max_batch_size=512 * 1024,
        )
        self.consumer = Consumer(
            kafka.connection(),
            "signal",
            ["marketdata.bars.v1"],
            self.on_bar,
            publisher=self.publisher,
            namespace=kafka.namespace,
            shadow=settings.deployment.shadow,
            group_options=kafka.group_options(),
            concurrent_keys=True,  # state is per symbol: one symbol need not wait for another
            # A bar's handler waits for its signal's ack (the offset is committed after it): throughput is the
            # symbols handled at once over the ack's latency, so every symbol of a wide panel gets a lane.
            max_in_flight=self.config.max_in_flight,
            # A group without offsets (new, or its offsets expired) starts from now: old bars would become decisions
            # on prices long gone. Skipped bars cost only a feature warm-up.
            auto_offset_reset="latest",
        )
        self.loaded_at = time.time_ns()
        self.tasks: list[asyncio.Task[None]] = []

    # --- policies -----------------------------------------------------------------------------------------------

    async def load_version(self, version: str) -> ServedPolicy:
        assert self.registry is not None
        model = self.registry.get(self.config.model_name, version)
        self.registry.verify(model)
        return await serving.load(model, self.config.max_weight, on_ray=self.config.serving == "ray")

    async def load_policies(self) -> PolicySlots:
        if self.registry is None:
            return PolicySlots(serving.baseline(self.config.max_weight))
        if self.config.serving == "ray":
            await asyncio.to_thread(serving.init_ray, self.config.ray_address)
        wanted = serving.wanted_versions(self.registry, self.config.model_name)
        if wanted["live"] is None:
            self.registry.get(self.config.model_name)  # raises with what to do
        live = await self.load_version(str(wanted["live"]))
        shadow = await self.load_version(wanted["shadow"]) if wanted["shadow"] else None
        return PolicySlots(live, shadow)

    async def announce(self, role: str, old: ServedPolicy | None, new: ServedPolicy | None, reason: str) -> None:
        either = new or old
        event = signal_pb2.ModelChanged(
            role=role,
            model_name=either.model_name if either else "",
            previous_version=old.model_version if old else "",
            model_version=new.model_version if new else "",
            content_hash=new.content_hash if new else "",
            reason=reason,
        )
        event.envelope.CopyFrom(new_envelope("signal"))
        await self.publisher.publish("signal.models.v1", event, key=event.model_name)
        log.info("model changed", role=role, previous=event.previous_version, version=event.model_version)

    async def watch_registry(self) -> None:
        """Hot swap: load what a stage pointer names, then switch; a version that fails to load is not served."""
        assert self.registry is not None and self.slots is not None
        while True:
            await asyncio.sleep(self.config.registry_poll_s)
            try:
                wanted = serving.wanted_versions(self.registry, self.config.model_name)
            except (OSError, ValueError) as error:
                log.warning("registry unreadable", error=str(error))
                continue
            for role in ("live", "shadow"):
                current = self.slots.live if role == "live" else self.slots.shadow
                target = wanted[role]
                current_version = current.registry_version if current else None
                if target == current_version or (role == "live" and target is None):
                    continue
                try:
                    new = await self.load_version(target) if target else None
                except (RegistryError, OSError, ValueError, RuntimeError) as error:
                    log.error("model version not loaded; still serving the current one", role=role, error=str(error))
                    continue
                old = self.slots.swap(role, new)
                if old is not None:  # its monitoring window ends with it
                    self.monitors.pop(old.model_version, None)
                await self.announce(role, old, new, "promoted" if new else "shadow cleared")

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        kafka = self.settings.kafka
        await ensure_topics(
            kafka.connection(), TOPICS, namespace=kafka.namespace, shadow=self.settings.deployment.shadow
        )
        self.slots = await self.load_policies()
        await self.publisher.start()
        await self.announce("live", None, self.slots.live, "loaded")
        if self.slots.shadow:
            await self.announce("shadow", None, self.slots.shadow, "loaded")
        await self.consumer.start()
        self.tasks.append(asyncio.create_task(self.consumer.run()))
        if self.registry is not None:
            self.tasks.append(asyncio.create_task(self.watch_registry()))

    async def stop(self) -> None:
        await self.consumer.stop()
        for task in self.tasks[1:]:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.consumer.close()
        await self.publisher.stop()
        if self.slots:
            self.slots.close()

    # --- the hot path -------------------------------------------------------------------------------------------

    async def decide(self, bar: marketdata_pb2.Bar, vector: np.ndarray, served: ServedPolicy, role: str) -> Any:
        weight = await served.predict(vector, self.engine.position(role, bar.symbol))
        signal = self.engine.signal(bar, vector, weight, served.model_name, served.model_version, role)
        if served.manifest is not None:
            await self.monitor(served, role, bar, vector, weight)
        return signal

    async def monitor(
        self, served: ServedPolicy, role: str, bar: marketdata_pb2.Bar, vector: np.ndarray, weight: float
    ) -> None:
        assert served.manifest is not None
        monitor = self.monitors.get(served.model_version)
        if monitor is None:
            monitor = self.monitors[served.model_version] = PredictionMonitor(
                served.manifest,
                served.model_name,
                served.model_version,
                role,
                self.config.monitor_window,
                self.config.monitor_every,
                self.config.drift_threshold,
            )
        report = monitor.observe(bar.symbol, vector, weight / self.config.max_weight, bar.close)
        if report is not None:
            report.envelope.CopyFrom(new_envelope("signal"))
            await self.publisher.publish("signal.monitoring.v1", report, key=served.model_version)

    async def on_bar(self, message: ConsumedMessage) -> None:
        started = time.perf_counter()
        bar: marketdata_pb2.Bar = message.value  # type: ignore[assignment]
        vector = self.engine.on_bar(bar)
        if vector is None:
            return
        assert self.slots is not None
        live, shadow = self.slots.live, self.slots.shadow  # one version per role answers this bar
        if shadow is None:
            signal = await self.decide(bar, vector, live, "live")
        else:
            signal, shadow_signal = await asyncio.gather(
                self.decide(bar, vector, live, "live"), self.decide(bar, vector, shadow, "shadow")
            )
            shadow_signal.envelope.CopyFrom(new_envelope("signal", cause=bar, message_id=signal_id(shadow_signal)))
        signal.envelope.CopyFrom(new_envelope("signal", cause=bar, message_id=signal_id(signal)))
        await self.publisher.publish("signal.signals.v1", signal, key=signal.symbol)
        BAR_TO_SIGNAL.observe(time.perf_counter() - started)
        if shadow is not None:
            await self.publisher.publish("signal.shadow.v1", shadow_signal, key=shadow_signal.symbol)

    # --- RPCs ---------------------------------------------------------------------------------------------------

    async def Predict(self, request: signal_pb2.PredictRequest, context: Any) -> signal_pb2.SignalGenerated:
        assert self.slots is not None
        engine = SignalEngine(self.engine.strategy_id)
        vector = None
        for bar in request.bars:
            vector = engine.on_bar(bar)
        if vector is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not enough bars to compute features (21 needed)")
            raise AssertionError("abort raises")
        live = self.slots.live
        weight = await live.predict(vector, 0.0)
        signal = engine.signal(request.bars[-1], vector, weight, live.model_name, live.model_version)
        signal.envelope.CopyFrom(new_envelope("signal"))
        return signal

    async def GetModelInfo(self, request: Any, context: Any) -> signal_pb2.ModelInfo:
        assert self.slots is not None
        live, shadow = self.slots.live, self.slots.shadow
        return signal_pb2.ModelInfo(
            model_name=live.model_name,
            model_version=live.model_version,
            content_hash=live.content_hash,
            feature_names=list(FEATURE_NAMES),
            shadow_model_version=shadow.model_version if shadow else "",
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
