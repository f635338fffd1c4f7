"""The runner every service's `__main__` uses: settings -> observability -> components -> gRPC -> graceful stop.

A service supplies a `build(settings)` coroutine returning its `ServiceParts`: the components to start in order
(consumers, publishers, background tasks; each with async start() and stop()) and the gRPC servicers. On SIGTERM or
SIGINT the runner turns health to NOT_SERVING, stops the components in reverse order (consumers drain and commit),
stops gRPC with a grace period and flushes telemetry. A bad configuration exits with code 2 and names the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from trading_platform.observability import get_logger, setup_observability, shutdown_observability
from trading_platform.rpc import AuthHook, RpcServer, Servicer, allow_all
from trading_platform.settings import ConfigError, ServiceSettings, load_settings

S = TypeVar("S", bound=ServiceSettings)


class Component(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class ServiceParts:
    components: Sequence[Component] = ()
    servicers: Sequence[Servicer] = ()
    auth: AuthHook = allow_all
    # Extra facts for the "service ready" log line (e.g. the consumer groups it joined).
    ready_info: dict[str, object] = field(default_factory=dict)


async def run(
    settings: ServiceSettings,
    build: Callable[[ServiceSettings], Awaitable[ServiceParts]],
    stop_event: asyncio.Event | None = None,
) -> None:
    log = get_logger(settings.service_name)
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    parts = await build(settings)
    server = RpcServer(parts.servicers, settings.grpc.host, settings.grpc.port, parts.auth)
    await server.start()
    started: list[Component] = []
    try:
        for component in parts.components:
            await component.start()
            started.append(component)
        await server.set_serving(True)
        log.info(
            "service ready",
            grpc_address=server.address,
            colour=settings.deployment.colour,
            role=settings.deployment.role,
            metrics_port=settings.telemetry.metrics_port or None,
            **parts.ready_info,
        )
        await stop.wait()
        log.info("service stopping")
    finally:
        await server.set_serving(False)
        for component in reversed(started):
            try:
                await component.stop()
            except Exception as error:  # keep stopping the others
                log.error("component failed to stop", component=type(component).__name__, error=str(error))
        await server.stop(settings.grpc.grace_s)
        log.info("service stopped")


def main(settings_cls: type[S], build: Callable[[S], Awaitable[ServiceParts]]) -> None:
    """Console-script entry point of a service."""
    try:
        settings = load_settings(settings_cls)
    except ConfigError as error:
        print(f"{settings_cls.__name__}: {error.code}", file=sys.stderr)
        print("Set the variables above (see the service's README for every key) and start again.", file=sys.stderr)
        raise SystemExit(2) from None
    setup_observability(settings.service_name, settings.telemetry)
    try:
        asyncio.run(run(settings, build))  # type: ignore[arg-type]
    finally:
        shutdown_observability()
