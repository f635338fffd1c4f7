"""Wiring the real services to the simulation: each app module's I/O names point at the in-memory doubles while a
run lasts, and the gRPC stubs order-management holds are replaced by calls into the other components.

Nothing of the services' logic is copied: OmsApp, RiskApp and ExecutionApp are built by their own constructors and
run their own start(), handlers and background tasks. Only what they import to reach Kafka, Redis, gRPC, the broker
and the wall clock is swapped for the duration of a run (and put back after it).
"""

from __future__ import annotations

import contextlib
import importlib
import types
from collections.abc import Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import grpc

from trading_simulation.broker import SimTradingClient, SimTradingStream
from trading_simulation.bus import SimConsumer, SimPublisher, sim_ensure_topics, sim_replay

if TYPE_CHECKING:
    from trading_simulation.world import World

# The simulated wall clock starts on 2026-01-05 14:30 UTC; it moves with the loop's virtual time.
EPOCH_NS = 1_767_623_400 * 1_000_000_000


class SimClock:
    """trading_platform.clock.Clock on the virtual time (risk's LiveClock)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def now_ns(self) -> int:
        return EPOCH_NS + int(self.world.loop.time() * 1e9)


def time_module(world: World) -> Any:
    """What `import time` gives the services' modules: monotonic, time and time_ns on the virtual clock."""
    loop = world.loop
    last = [0]

    def time_ns() -> int:
        # A real clock has moved by the next call: a nanosecond at least, so timestamps taken in one step differ.
        last[0] = max(last[0] + 1, EPOCH_NS + int(loop.time() * 1e9))
        return last[0]

    return SimpleNamespace(
        monotonic=loop.time,
        perf_counter=loop.time,
        time=lambda: time_ns() / 1e9,
        time_ns=time_ns,
    )


class SimRedis:
    """The part of redis.asyncio risk uses; its data is the world's, so it survives risk's crashes."""

    def __init__(self, world: World) -> None:
        self.data = world.redis

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        return {k.encode(): str(v).encode() for k, v in self.data.get(key, {}).items()}

    async def hset(self, key: str, mapping: dict[str, Any]) -> int:
        self.data.setdefault(key, {}).update(mapping)
        return len(mapping)

    async def aclose(self) -> None:
        return None


class _Channel:
    """A gRPC channel: the stubs made on it are SimStubs (see _StubModule), so it carries nothing itself."""

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> _Channel:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class SimContext:
    """The servicer context a simulated call hands a servicer: abort raises the gRPC error the caller sees."""

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise rpc_error(code, details)

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def peer(self) -> str:
        return "simulated"

    def auth_context(self) -> dict[str, Any]:
        return {}

    def set_code(self, code: Any) -> None:
        return None

    def set_details(self, details: str) -> None:
        return None


# Which component serves each gRPC service a stub can be made for.
SERVED_BY = {
    "RiskServiceStub": "risk",
    "ExecutionServiceStub": "execution",
    "OrderServiceStub": "order-management",
}


class SimStub:
    """A gRPC stub whose calls go to the component serving it, through the simulation's RPC faults (CheckOrder
    only: order-management's question to risk is the call on the order path)."""

    def __init__(self, world: World, callee: str, deadline_s: float = 5.0) -> None:
        self.world = world
        self.callee = callee
        self.deadline_s = deadline_s

    def __getattr__(self, method: str) -> Any:
        async def call(request: Any, timeout: float | None = None, **_: Any) -> Any:  # noqa: ASYNC109 - gRPC's
            deadline = timeout or (self.world.risk_deadline_s if method == "CheckOrder" else self.deadline_s)
            return await self.world.rpc(
                self.callee,
                lambda app: getattr(app, method)(request, SimContext()),
                deadline,
                faults=method == "CheckOrder",
            )

        return call


class _StubModule:
    """A *_pb2_grpc module whose stubs are SimStubs (its other names are the real module's)."""

    def __init__(self, real: Any, world: World) -> None:
        self._real = real
        self._world = world

    def __getattr__(self, name: str) -> Any:
        if name in SERVED_BY:
            return lambda *_, **__: SimStub(self._world, SERVED_BY[name])
        return getattr(self._real, name)


def _patches(world: World) -> dict[str, Any]:
    """The I/O names a service module may import, and their doubles (only those a module has are swapped)."""
    channel = lambda *_, **__: _Channel()  # noqa: E731
    return {
        "Publisher": SimPublisher,
        "Consumer": SimConsumer,
        "replay": sim_replay,
        "ensure_topics": sim_ensure_topics,
        "insecure_channel": channel,
        "channel": channel,
        "secure_channel": channel,
        "time": time_module(world),
        "aioredis": SimpleNamespace(from_url=lambda *_, **__: SimRedis(world)),
        "LiveClock": lambda: SimClock(world),
        "TradingClient": SimTradingClient,
        "ConfirmedTradingStream": SimTradingStream,
    }


MODULES = ("oms_service.app", "risk_service.app", "execution_service.app", "trading_platform.envelope")


@contextlib.contextmanager
def wired(world: World) -> Iterator[None]:
    """The services' modules talk to this world's doubles inside the block."""
    saved: list[tuple[Any, str, Any]] = []
    doubles = _patches(world)
    try:
        for module_name in MODULES:
            module = importlib.import_module(module_name)
            swaps = {name: double for name, double in doubles.items() if hasattr(module, name)}
            for name, value in vars(module).items():
                if isinstance(value, types.ModuleType) and name.endswith("_pb2_grpc"):
                    swaps[name] = _StubModule(value, world)
            if module_name == "oms_service.app":
                swaps["OrderBook"] = world.variant.book
            for name, double in swaps.items():
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, double)
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)
