"""Blue-green that understands Kafka: which colour of a service is live, held in Redis, read by both colours.

Moving a Kubernetes Service selector moves gRPC traffic only; Kafka consumers and the broker connection do not follow
it. So each colour of a service reads the live colour from Redis and takes its role from it:

- live: consumes in the live consumer group, publishes to the live topics, talks to the broker;
- shadow: consumes the same live inputs in `<group>-shadow`, publishes to `shadow.<topic>`, never talks to the broker.

Keys (prefixed by the Kafka namespace, so isolated runs do not meet):

    deploy:<service>:live            the live colour ("blue" when absent)
    deploy:<service>:<colour>        what that colour reports: role, pid, since (a hash, refreshed every second)
    deploy:<service>:lease           the live lease (market-data, execution, order-management): the colour holding it
    deploy:<service>:history         promotions and rollbacks, newest last

A colour that sees its role change stops its components (consumers drain and commit), and starts them again in the
new role. A service with one live colour at a time (the broker connection of market-data and execution;
order-management's book and consumer group) acquires the lease before it starts live and releases it when it stops:
the old colour lets go before the new one connects or joins, so two colours never hold the connection at once (a
crashed holder's lease expires after `LEASE_TTL_MS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from redis.asyncio import Redis

Role = Literal["live", "shadow"]
COLOURS = ("blue", "green")
DEFAULT_LIVE = "blue"
LEASE_TTL_MS = 5_000
POLL_S = 0.2

# Release the lease only if this colour holds it (a compare-and-delete).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


def other(colour: str) -> str:
    return COLOURS[1 - COLOURS.index(colour)]


class DeploymentControl:
    """One service's blue-green state in Redis; used by the service's colours and by `tradectl deploy`."""

    def __init__(self, redis: Redis, service: str, namespace: str = "") -> None:
        self.redis = redis
        self.service = service
        self.prefix = f"{namespace}deploy:{service}:"

    @classmethod
    def from_url(cls, url: str, service: str, namespace: str = "") -> DeploymentControl:
        return cls(Redis.from_url(url, decode_responses=True), service, namespace)

    async def close(self) -> None:
        await self.redis.aclose()

    async def live_colour(self) -> str:
        value = await self.redis.get(self.prefix + "live")
        return str(value) if value else DEFAULT_LIVE

    async def role_of(self, colour: str) -> Role:
        return "live" if await self.live_colour() == colour else "shadow"

    async def set_live(self, colour: str, record: dict[str, Any]) -> None:
        if colour not in COLOURS:
            raise ValueError(f"colour must be one of {COLOURS}, got {colour!r}")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.prefix + "live", colour)
            pipe.rpush(self.prefix + "history", json.dumps(record, sort_keys=True))
            await pipe.execute()

    async def history(self) -> list[dict[str, Any]]:
        return [json.loads(item) for item in await self.redis.lrange(self.prefix + "history", 0, -1)]

    async def report(self, colour: str, role: Role, since: float, ready: bool) -> None:
        key = self.prefix + colour
        mapping: dict[Any, Any] = {
            "role": role,
            "pid": os.getpid(),
            "at": time.time(),
            "since": since,
            "ready": int(ready),
        }
        await self.redis.hset(key, mapping=mapping)
        await self.redis.expire(key, 10)

    async def reported(self, colour: str) -> dict[str, str]:
        fields = await self.redis.hgetall(self.prefix + colour)  # decode_responses: str keys and values
        return {str(k): str(v) for k, v in fields.items()}

    async def lease_holder(self) -> str | None:
        value = await self.redis.get(self.prefix + "lease")
        return str(value) if value else None

    async def acquire_lease(self, colour: str, stop: asyncio.Event | None = None) -> bool:
        """Wait until this colour holds the live lease (or stop is set: False)."""
        while stop is None or not stop.is_set():
            if await self.redis.set(self.prefix + "lease", colour, nx=True, px=LEASE_TTL_MS):
                return True
            if await self.lease_holder() == colour:  # ours already (a restart within the TTL)
                await self.renew_lease(colour)
                return True
            await asyncio.sleep(POLL_S)
        return False

    async def renew_lease(self, colour: str) -> bool:
        return bool(await self.redis.eval(_RENEW, 1, self.prefix + "lease", colour, LEASE_TTL_MS))  # type: ignore[misc]

    async def release_lease(self, colour: str) -> None:
        await self.redis.eval(_RELEASE, 1, self.prefix + "lease", colour)  # type: ignore[misc]


class RoleWatcher:
    """Inside a service colour: reports its role every second and calls back when the live colour moves."""

    def __init__(self, control: DeploymentControl, colour: str, on_change: Callable[[Role], Awaitable[None]]) -> None:
        self.control = control
        self.colour = colour
        self.on_change = on_change
        self.role: Role | None = None
        self.holds_lease = False
        self.since = time.time()
        self.ready = False  # set once the service runs in its role (components started, gRPC serving)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish after the Redis command in flight, if any: cancelling one half-way can wedge the shared client."""
        self._stopping.set()

    async def run(self, initial: Role) -> None:
        self.role = initial
        beat = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), POLL_S)
            if self._stopping.is_set():
                return
            role = await self.control.role_of(self.colour)
            if role != self.role:
                self.role = role
                await self.on_change(role)
            if self.holds_lease:
                await self.control.renew_lease(self.colour)
            if time.monotonic() - beat >= 1.0:
                await self.control.report(self.colour, self.role, self.since, self.ready)
                beat = time.monotonic()
