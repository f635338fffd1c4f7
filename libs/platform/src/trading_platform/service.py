"""The runner every service's `__main__` uses: settings -> observability -> components -> gRPC -> graceful stop.

A service supplies a `build(settings)` coroutine returning its `ServiceParts`: the components to start in order
(consumers, publishers, background tasks; each with async start() and stop()) and the gRPC servicers. On SIGTERM or
SIGINT the runner turns health to NOT_SERVING, stops the components in reverse order (consumers drain and commit),
stops gRPC with a grace period and flushes telemetry. A bad configuration exits with code 2 and names the key.
With `DEPLOYMENT__BLUE_GREEN`, the role follows the live colour in Redis (trading_platform.deployment).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from trading_platform.deployment import DeploymentControl, RoleWatcher
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
    # One live colour at a time: in blue-green, live only while holding the service's lease, which the other colour
    # releases once its components have stopped. For the one broker connection (market-data, execution), and for
    # order-management, whose book has one writer and whose consumer group the embedded broker can wedge when the
    # old colour's member leaves while the new colour's joins (a join then waits for ever).
    live_lease: bool = False


async def run(
    settings: ServiceSettings,
    build: Callable[[ServiceSettings], Awaitable[ServiceParts]],
    stop_event: asyncio.Event | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or stop_event). In blue-green mode, follow the live colour: each time this colour's
    role changes, stop everything and start again in the new role."""
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):  # `kill -USR1 <pid>`: where is every task waiting?
        loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
    if not settings.deployment.blue_green:
        await _run_once(settings, build, stop)
        return
    control = DeploymentControl.from_url(settings.redis.url, settings.service_name, settings.kafka.namespace)
    colour = settings.deployment.colour
    try:
        while not stop.is_set():
            role = await control.role_of(colour)
            deployment = settings.deployment.model_copy(update={"role": role})
            current = settings.model_copy(update={"deployment": deployment})
            await _run_once(current, build, stop, control)
    finally:
        await control.close()


async def _bounded(step: Awaitable[object], timeout_s: float, log: Any, what: str) -> bool:
    """Run a stop step for at most timeout_s; one that hangs is cancelled, logged and left behind. True if it
    completed without an error."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        log.error("did not stop in time; abandoned", step=what, timeout_s=timeout_s)
        return False
    if not task.cancelled() and task.exception() is not None:  # keep stopping the others
        log.error("failed to stop", step=what, error=str(task.exception()))
        return False
    return True


def _dump_tasks() -> None:
    """Print every asyncio task's stack to stderr (the service log): for a service that does not stop or answer."""
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}: {task.get_coro()!r}", file=sys.stderr)
        for frame in task.get_stack():
            code = frame.f_code
            print(f"    {code.co_filename}:{frame.f_lineno} in {code.co_name}", file=sys.stderr)
    sys.stderr.flush()


async def _run_once(
    settings: ServiceSettings,
    build: Callable[[ServiceSettings], Awaitable[ServiceParts]],
    stop: asyncio.Event,
    control: DeploymentControl | None = None,
) -> None:
    log = get_logger(settings.service_name)
    deployment = settings.deployment
    role_changed = asyncio.Event()
    watcher = None
    watch_task: asyncio.Task[None] | None = None
    if control is not None:

        async def changed(role: str) -> None:
            log.info("live colour moved: restarting in the new role", colour=deployment.colour, role=role)
            role_changed.set()

        watcher = RoleWatcher(control, deployment.colour, changed)
        watch_task = asyncio.create_task(watcher.run(deployment.role))
    parts = await build(settings)
    server = RpcServer(parts.servicers, settings.grpc.host, settings.grpc.port, parts.auth)
    await server.start()
    started: list[Component] = []
    until = asyncio.create_task(_first_of(stop, role_changed))
    try:
        if control is not None and watcher is not None and parts.live_lease and deployment.role == "live":
            log.info("waiting for the live lease", colour=deployment.colour)
            if not await _lease(control, deployment.colour, until):
                return
            watcher.holds_lease = True
        for component in parts.components:
            await component.start()
            started.append(component)
        await server.set_serving(True)
        log.info(
            "service ready",
            grpc_address=server.address,
            colour=deployment.colour,
            role=deployment.role,
            metrics_port=settings.telemetry.metrics_port or None,
            **parts.ready_info,
        )
        if control is not None and watcher is not None:
            watcher.since, watcher.ready = time.time(), True
            await control.report(deployment.colour, deployment.role, watcher.since, True)
        await until
        log.info("service stopping")
    finally:
        # Every step is bounded and never waits for a cancellation to finish: a step that hangs must not keep a
        # blue-green colour from handing over (it is logged, with `kill -USR1 <pid>` to see where it hangs).
        until.cancel()
        if watcher is not None and watch_task is not None:
            watcher.stop()
            await _bounded(watch_task, 2.0, log, "role watcher")
        await _bounded(server.set_serving(False), 2.0, log, "health status")
        for component in reversed(started):
            await _bounded(component.stop(), max(settings.grpc.grace_s, 1.0) * 2, log, type(component).__name__)
        if control is not None and watcher is not None and watcher.holds_lease:
            if await _bounded(control.release_lease(deployment.colour), 2.0, log, "lease release"):
                log.info("live lease released", colour=deployment.colour)
        await server.stop(settings.grpc.grace_s)
        log.info("service stopped")


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _lease(control: DeploymentControl, colour: str, until: asyncio.Task[None]) -> bool:
    """Acquire the lease unless the service is asked to stop (or its role moves) first."""
    acquire = asyncio.create_task(control.acquire_lease(colour))
    done, _ = await asyncio.wait([acquire, until], return_when=asyncio.FIRST_COMPLETED)
    if acquire in done:
        return acquire.result()
    acquire.cancel()
    return False


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
