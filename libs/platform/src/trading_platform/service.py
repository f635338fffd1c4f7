"""The runner every service's `__main__` uses: settings -> observability -> components -> gRPC -> graceful stop.

A service supplies a `build(settings)` coroutine returning its `ServiceParts`: the components to start in order
(consumers, publishers, background tasks; each with async start() and stop()) and the gRPC servicers. On SIGTERM or
SIGINT the runner turns health to NOT_SERVING, stops the components in reverse order (consumers drain and commit),
stops gRPC with a grace period and flushes telemetry. A bad configuration exits with code 2 and names the key.
With `DEPLOYMENT__BLUE_GREEN`, the role follows the live colour in Redis (trading_platform.deployment); a service
that owns a broker connection (`live_lease`) is live only while it holds the service's fenced live lease.
While the service runs, its health follows its dependencies: every HEALTH_INTERVAL_S the Kafka probe (and the
service's own `health_checks`) must answer, or health turns NOT_SERVING until they answer again.

Consumers are supervised. Health is also NOT_SERVING while one of the service's consumers (ServiceParts.consumers;
by default every Consumer a component holds as an attribute) is retrying a message for a transient error, or its
loop has died; the reason is logged. A consumer whose loop died and which its owner did not close or replace within
CONSUMER_DEATH_GRACE_S (order-management replaces its consumer after an aborted transaction) is dead: the runner
logs it, stops the service gracefully and raises ConsumerDiedError, and `main` exits with code 1, so the service's
supervisor (Kubernetes, `make up`'s process supervisor) restarts it and it resumes from its committed offsets. The
runner does not restart a consumer task itself: the service owns it and its state, and a fresh process is the one
restart that resets both.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import requests

from trading_platform import deployment as _deployment
from trading_platform import rpc
from trading_platform.call_security import ServiceCallSecurity
from trading_platform.deployment import DeploymentControl, LeaseGuard, RoleWatcher
from trading_platform.messaging.consumer import Consumer
from trading_platform.messaging.health import BusProbe
from trading_platform.observability import get_logger, setup_observability, shutdown_observability
from trading_platform.rpc import RpcServer, Servicer
from trading_platform.settings import ConfigError, ServiceSettings, load_settings
from trading_platform.vault import SecretAccessError, unreachable

S = TypeVar("S", bound=ServiceSettings)
HEALTH_INTERVAL_S = 1.0
CONSUMER_DEATH_GRACE_S = 3.0  # a died consumer its owner has not closed by then stops the service
HealthCheck = Callable[[], Awaitable[bool]]


class ConsumerDiedError(RuntimeError):
    """A consumer's loop died and its service did not recover it: the service stops and exits with code 1."""


class Component(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class ServiceParts:
    components: Sequence[Component] = ()
    servicers: Sequence[Servicer] = ()
    # Extra facts for the "service ready" log line (e.g. the consumer groups it joined).
    ready_info: dict[str, object] = field(default_factory=dict)
    # One process owns the broker connection (market-data's data stream, execution's trading connection): in
    # blue-green the live colour starts its components only once it holds the service's live lease, which the other
    # colour releases once its components have stopped. `lease` is the guard the components check before every act
    # on the broker (armed here with the fencing token; given, it implies live_lease). Losing the lease turns health
    # NOT_SERVING at once, stops the components and waits for the lease again (trading_platform.deployment).
    live_lease: bool = False
    lease: LeaseGuard | None = None
    # Named checks of the service's own dependencies (Redis, the broker's API...), each answering True when healthy;
    # the Kafka probe is always there.
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    # The consumers the runner supervises, asked at every check (an owner may replace one); None: every Consumer a
    # component holds as an attribute.
    consumers: Callable[[], Iterable[Consumer]] | None = None


def consumers_of(components: Sequence[object]) -> Callable[[], list[Consumer]]:
    """The Consumers the components hold as attributes (or are), looked up afresh at each call."""

    def find() -> list[Consumer]:
        found: list[Consumer] = []
        for component in components:
            if isinstance(component, Consumer):
                found.append(component)
            attributes = getattr(component, "__dict__", {})
            found += [value for value in attributes.values() if isinstance(value, Consumer)]
        return found

    return find


class ConsumersCheck:
    """The health check of a service's consumers: healthy while none is retrying a transient error or dead."""

    def __init__(self, consumers: Callable[[], Iterable[Consumer]]) -> None:
        self.consumers = consumers
        self.last_error = ""
        self._died_at: dict[int, float] = {}  # id(consumer) -> when its death was first seen

    async def __call__(self) -> bool:
        reasons = [reason for consumer in self.consumers() if (reason := consumer.health()) is not None]
        self.last_error = "; ".join(reasons)[:1000]
        return not reasons

    def dead(self) -> str | None:
        """Why the service must stop: a consumer died and was not closed or replaced within the grace period."""
        now = time.monotonic()
        current = {id(consumer): consumer for consumer in self.consumers()}
        self._died_at = {key: at for key, at in self._died_at.items() if key in current}
        for key, consumer in current.items():
            if consumer.failure is None or consumer.closed:
                self._died_at.pop(key, None)
                continue
            if now - self._died_at.setdefault(key, now) >= CONSUMER_DEATH_GRACE_S:
                return consumer.health()
        return None


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
    failures: list[str] = []
    security = await _call_security(settings, stop, failures)
    try:
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
    finally:
        if security is not None:
            await security.stop()
        if failures:  # fail closed: the certificate could not be renewed, so the service stopped serving
            raise SystemExit(f"{settings.service_name} stopped: {failures[0]}")


async def _call_security(
    settings: ServiceSettings, stop: asyncio.Event, failures: list[str]
) -> ServiceCallSecurity | None:
    """The service's gRPC certificate (Vault PKI), token verification and refusal reporting, made the process
    default for its server and its client channels. A process that configured gRPC security itself (a test, a tool)
    and has no Vault keeps its own; otherwise no Vault means no start."""
    log = get_logger(settings.service_name)
    if not settings.vault.addr:
        if rpc.configured("server"):
            return None
        raise ConfigError(["TRADING_VAULT__ADDR is required: the service's gRPC certificate comes from Vault PKI"])

    def failed(reason: str) -> None:
        failures.append(reason)
        log.error("gRPC certificate could not be renewed: stopping", reason=reason)
        stop.set()

    try:
        security = await ServiceCallSecurity.start(settings, failed)
    except requests.RequestException as error:
        raise SystemExit(
            f"{settings.service_name} cannot serve gRPC: {unreachable(settings.vault.addr, error)}"
        ) from None
    except Exception as error:
        raise SystemExit(f"{settings.service_name} cannot serve gRPC: {error}") from None
    rpc.configure(server=security.server, client=security.client)
    return security


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
    server = RpcServer(
        parts.servicers,
        settings.grpc.host,
        settings.grpc.port,
        reflection_enabled=settings.grpc.reflection,
        health_port=settings.grpc.health_port or None,
    )
    await server.start()
    started: list[Component] = []
    lease_lost = asyncio.Event()
    guard: LeaseGuard | None = None
    keeper: asyncio.Task[None] | None = None
    pending: set[asyncio.Future[None]] = set()
    died = asyncio.Event()
    until = asyncio.create_task(_first_of(stop, role_changed, lease_lost, died))
    probe = BusProbe(settings.kafka.connection())
    consumers = ConsumersCheck(parts.consumers or consumers_of(parts.components))
    health_task: asyncio.Task[None] | None = None
    supervisor: asyncio.Task[None] | None = None
    try:
        if control is not None and (parts.live_lease or parts.lease is not None) and deployment.role == "live":
            guard = parts.lease or LeaseGuard(settings.service_name)
            log.info("waiting for the live lease", colour=deployment.colour)
            if not await _lease(control, deployment.colour, guard, until):
                return
            log.info("live lease acquired", colour=deployment.colour, token=guard.token)

            def lost(reason: str) -> None:  # health NOT_SERVING at once, before the components are stopped
                lease_lost.set()
                flip = asyncio.ensure_future(server.set_serving(False))
                pending.add(flip)
                flip.add_done_callback(pending.discard)

            guard.on_lost.append(lost)
            keeper = asyncio.create_task(guard.keep(control))
        for component in parts.components:
            await component.start()
            started.append(component)
        if guard is not None and not guard.valid():  # lost while starting: never SERVING on a stale lease
            log.error("live lease lost while starting: stopping, then waiting for it again", colour=deployment.colour)
            return
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
        checks = {"kafka": probe, "consumers": consumers, **parts.health_checks}
        health_task = asyncio.create_task(_follow_health(server, checks, guard, log))
        supervisor = asyncio.create_task(_supervise(consumers, died))
        await until
        if died.is_set():
            reason = consumers.dead() or "a consumer died"
            await _bounded(server.set_serving(False), 2.0, log, "health status")
            log.error("consumer died: stopping the service (exit code 1) so its supervisor restarts it", reason=reason)
            raise ConsumerDiedError(reason)
        if lease_lost.is_set():
            log.error(
                "live lease lost: stopping, then waiting for the lease again",
                colour=deployment.colour,
                token=guard.token if guard else None,
            )
        log.info("service stopping")
    finally:
        # Every step is bounded and never waits for a cancellation to finish: a step that hangs must not keep a
        # blue-green colour from handing over (it is logged, with `kill -USR1 <pid>` to see where it hangs).
        until.cancel()
        for task, what in ((health_task, "health checks"), (supervisor, "consumer supervision")):
            if task is not None:
                task.cancel()
                await _bounded(task, 2.0, log, what)  # a cancelled task counts as stopped
        await _bounded(probe.close(), 2.0, log, "health probe")
        if watcher is not None and watch_task is not None:
            watcher.stop()
            await _bounded(watch_task, 2.0, log, "role watcher")
        await _bounded(server.set_serving(False), 2.0, log, "health status")
        for component in reversed(started):
            await _bounded(component.stop(), max(settings.grpc.grace_s, 1.0) * 2, log, type(component).__name__)
        if control is not None and guard is not None and keeper is not None and guard.token is not None:
            # Renewed until the components have stopped, then let go (compare-and-delete: a lease another token
            # holds by now is left alone).
            guard.stop_keeping()
            await _bounded(keeper, 2.0, log, "lease renewal")
            released = asyncio.ensure_future(control.release_lease(deployment.colour, guard.token))
            if await _bounded(released, 2.0, log, "lease release") and released.result():
                log.info("live lease released", colour=deployment.colour, token=guard.token)
            guard.released()
        await server.stop(settings.grpc.grace_s)
        log.info("service stopped")


async def _follow_health(server: RpcServer, checks: dict[str, HealthCheck], guard: LeaseGuard | None, log: Any) -> None:
    """NOT_SERVING while a dependency does not answer, SERVING again once all do (never on a lost lease)."""
    serving = True
    while True:
        await asyncio.sleep(HEALTH_INTERVAL_S)
        failing = []
        for name, check in checks.items():
            try:
                healthy = await asyncio.wait_for(check(), HEALTH_INTERVAL_S * 3)
            except Exception:
                healthy = False
            if not healthy:
                failing.append(name)
        if failing and serving:
            await server.set_serving(False)
            reasons = {name: getattr(checks[name], "last_error", "") for name in failing}
            log.error("dependency not answering: health NOT_SERVING", dependencies=failing, reasons=reasons)
        elif not failing and not serving and (guard is None or guard.valid()):
            await server.set_serving(True)
            log.info("dependencies answer again: health SERVING")
        serving = not failing


async def _supervise(consumers: ConsumersCheck, died: asyncio.Event) -> None:
    while not died.is_set():
        await asyncio.sleep(HEALTH_INTERVAL_S / 2)
        if consumers.dead() is not None:
            died.set()


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _lease(control: DeploymentControl, colour: str, guard: LeaseGuard, until: asyncio.Task[None]) -> bool:
    """Acquire the lease and arm the guard with it, unless the service is asked to stop (or its role moves) first."""

    async def acquire_and_hold() -> bool:
        while True:
            sent = time.monotonic()  # the validity window counts from before Redis set the lease's expiry
            token = await control.try_acquire_lease(colour)
            if token is not None:
                guard.hold(colour, token, sent)
                return True
            await asyncio.sleep(_deployment.POLL_S)

    acquire = asyncio.create_task(acquire_and_hold())
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
    except ConsumerDiedError as error:
        print(
            f"{settings.service_name}: a consumer died ({error}); exiting so the supervisor restarts the service",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    except SecretAccessError as error:
        print(f"{settings.service_name} cannot start: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except requests.RequestException as error:  # Vault (or another HTTP dependency) did not answer at start
        print(f"{settings.service_name} cannot start: {type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        shutdown_observability()
