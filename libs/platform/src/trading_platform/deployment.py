"""Blue-green that understands Kafka: which colour of a service is live, held in Redis, read by both colours.

Moving a Kubernetes Service selector moves gRPC traffic only; Kafka consumers and the broker connection do not follow
it. So each colour of a service reads the live colour from Redis and takes its role from it:

- live: consumes in the live consumer group, publishes to the live topics, talks to the broker;
- shadow: consumes the same live inputs in `<group>-shadow`, publishes to `shadow.<topic>`, never talks to the broker.

Keys (prefixed by the Kafka namespace, so isolated runs do not meet):

    deploy:<service>:live            the live colour ("blue" when absent)
    deploy:<service>:<colour>        what that colour reports: role, pid, since (a hash, refreshed every second)
    deploy:<service>:lease           the live lease, "<colour>:<token>", expiring `LEASE_TTL_MS` after its last renewal
    deploy:<service>:lease:token     the fencing-token counter: incremented on every acquisition, never reset
    deploy:<service>:history         promotions and rollbacks, newest last

A colour that sees its role change stops its components (consumers drain and commit), and starts them again in the
new role.

The live lease: where one process must own a broker connection (market-data's data stream, execution's trading
connection, which submits orders), the live colour acts on the broker only while it holds the lease.

- Acquiring sets the lease only when nobody holds it (no shortcut for "it is my colour already": a restarted or
  second process of the same colour waits like anyone else) and takes the next fencing token in the same script.
  Renewing and releasing are compare-and-set on "<colour>:<token>": a holder whose token has been replaced cannot
  renew or release what is now someone else's.
- The holder keeps a `LeaseGuard`: a local monotonic deadline, `valid_until`, that each successful renewal pushes to
  the renewal's send time + `LEASE_TTL_MS - LEASE_MARGIN_MS`. The service checks the guard before every act on the
  broker (execution: each submit and cancel; market-data: each record published from the broker). Past the deadline
  (renewals failed or hung: Redis down, a partition, a stalled process), or as soon as Redis refuses a renewal (another
  token holds the lease), the guard refuses: `LeaseLost` names the service, colour and token, one error line is
  logged, health turns NOT_SERVING and the runner stops the components and waits for the lease again.
- Handover: on promotion the old colour stops its components, then releases; the new colour acquires after that.
  After a crash or a partition nobody releases: the lease expires in Redis `LEASE_TTL_MS` after the last renewal
  Redis applied, and only then can another holder acquire. The old holder's deadline was computed from when that
  renewal was *sent* (before Redis applied it), with the margin off, so the old holder has stopped acting at least
  `LEASE_MARGIN_MS` before the new one can start.

What the lease cannot fence: an act already past its check when the deadline falls (a submit on its way to the
broker) and a process frozen between check and act for longer than the margin. The broker does not take a fencing
token, so for those the last line is the broker's own idempotency: an order's client order id is unique, so a submit
repeated by an old holder is refused as a duplicate; cancels are idempotent.
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

from trading_platform.observability import get_logger

Role = Literal["live", "shadow"]
COLOURS = ("blue", "green")
DEFAULT_LIVE = "blue"
LEASE_TTL_MS = 5_000  # the lease expires in Redis this long after its last renewal
LEASE_MARGIN_MS = 1_500  # the holder stops acting this long before that: its validity window is TTL - margin
POLL_S = 0.2  # role polling and lease renewal interval

log = get_logger("deployment")

# Take the lease only if nobody holds it, with the next fencing token: returns the token, or 0.
_ACQUIRE = """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""
# Renew / release only if this holder and token still hold it (compare-and-set).
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def other(colour: str) -> str:
    return COLOURS[1 - COLOURS.index(colour)]


def lease_window_s() -> float:
    """How long after a renewal was sent its holder may act: strictly less than the lease's TTL in Redis."""
    if not 0 < LEASE_MARGIN_MS < LEASE_TTL_MS:
        raise ValueError(f"LEASE_MARGIN_MS ({LEASE_MARGIN_MS}) must be between 0 and LEASE_TTL_MS ({LEASE_TTL_MS})")
    return (LEASE_TTL_MS - LEASE_MARGIN_MS) / 1000


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

    # -- the live lease ----------------------------------------------------------------------------------------
    async def lease(self) -> tuple[str, int] | None:
        """Who holds the live lease: (colour, fencing token), or None."""
        value = await self.redis.get(self.prefix + "lease")
        if not value:
            return None
        colour, _, token = str(value).rpartition(":")
        return colour, int(token)

    async def lease_holder(self) -> str | None:
        """The colour holding the live lease, or None."""
        held = await self.lease()
        return held[0] if held else None

    async def try_acquire_lease(self, colour: str) -> int | None:
        """One attempt: the new fencing token if the lease was free, else None."""
        keys = (self.prefix + "lease", self.prefix + "lease:token")
        token = int(await self.redis.eval(_ACQUIRE, 2, *keys, colour, LEASE_TTL_MS))  # type: ignore[misc]
        return token or None

    async def acquire_lease(self, colour: str, stop: asyncio.Event | None = None) -> int | None:
        """Wait until this colour holds the live lease and return its fencing token (None if stop is set first).
        A lease held by anyone, this colour included, is waited out: released, or expired after its TTL."""
        while stop is None or not stop.is_set():
            token = await self.try_acquire_lease(colour)
            if token is not None:
                return token
            await asyncio.sleep(POLL_S)
        return None

    async def renew_lease(self, colour: str, token: int) -> bool:
        """Push the lease's expiry out by `LEASE_TTL_MS`, only if (colour, token) still holds it."""
        value = f"{colour}:{token}"
        return bool(await self.redis.eval(_RENEW, 1, self.prefix + "lease", value, LEASE_TTL_MS))  # type: ignore[misc]

    async def release_lease(self, colour: str, token: int) -> bool:
        """Let go of the lease, only if (colour, token) still holds it."""
        value = f"{colour}:{token}"
        return bool(await self.redis.eval(_RELEASE, 1, self.prefix + "lease", value))  # type: ignore[misc]


class LeaseLost(RuntimeError):
    """An act on the broker refused: this process does not (or no longer) validly hold the service's live lease."""

    def __init__(self, service: str, colour: str | None, token: int | None, act: str, reason: str) -> None:
        self.service, self.colour, self.token, self.act, self.reason = service, colour, token, act, reason
        super().__init__(
            f"{service} ({colour or 'no colour'}) refuses to {act}: live lease token {token} not held ({reason})"
        )


class LeaseGuard:
    """The holder's side of the live lease: checked before every act on the broker, kept valid by `keep`.

    Not armed (no blue-green, or a service run alone) it lets every act through. Armed by `hold` once the runner has
    acquired the lease, it allows an act only while the local deadline `valid_until` (monotonic) lies ahead and no
    renewal has been refused. Losing the lease is final for this guard: the runner stops and builds afresh."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.armed = False
        self.colour: str | None = None
        self.token: int | None = None
        self.valid_until = 0.0
        self.lost: str | None = None  # why it was lost, once it was
        self.on_lost: list[Callable[[str], None]] = []
        self._stop_keeping = asyncio.Event()

    def hold(self, colour: str, token: int, renewed_at: float) -> None:
        """Armed with an acquired lease; renewed_at: monotonic time the last renewal (or acquisition) was sent."""
        self.armed, self.colour, self.token, self.lost = True, colour, token, None
        self.valid_until = renewed_at + lease_window_s()

    def renewed(self, sent_at: float) -> None:
        if self.lost is None:
            self.valid_until = max(self.valid_until, sent_at + lease_window_s())

    def lose(self, reason: str) -> None:
        """Stop acting at once: log it, tell the runner (health NOT_SERVING, stop, wait for the lease again)."""
        if self.lost is not None or not self.armed:
            return
        self.lost = reason
        log.error(
            "live lease lost: refusing every act on the broker",
            service=self.service,
            colour=self.colour,
            token=self.token,
            reason=reason,
        )
        for callback in self.on_lost:
            callback(reason)

    def released(self) -> None:
        """After the release: nothing more is allowed (the components have stopped)."""
        self.lost = self.lost or "released"

    def valid(self) -> bool:
        """May this process act on the broker now? Loses the lease when its validity window has run out."""
        if not self.armed:
            return True
        if self.lost is None and time.monotonic() >= self.valid_until:
            self.lose(f"not renewed within {lease_window_s():.1f} s (TTL {LEASE_TTL_MS} ms less the margin)")
        return self.lost is None

    def check(self, act: str) -> None:
        """Raise `LeaseLost` (naming the service, colour and token) unless the lease is validly held."""
        if not self.valid():
            raise LeaseLost(self.service, self.colour, self.token, act, self.lost or "not held")

    async def keep(self, control: DeploymentControl) -> None:
        """Renew the lease every `POLL_S` until `stop_keeping()` or until it is lost. A renewal Redis refuses (another
        token holds the lease) loses it at once; one that fails or hangs does not push the deadline, which a local
        timer enforces on its own, so a hung Redis call cannot keep the holder acting."""
        assert self.colour is not None and self.token is not None, "keep() before hold()"
        deadline = asyncio.create_task(self._enforce_deadline())
        failing = False
        try:
            while self.lost is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_keeping.wait(), POLL_S)
                if self._stop_keeping.is_set() or self.lost is not None:
                    return
                sent = time.monotonic()
                try:
                    renewed = await control.renew_lease(self.colour, self.token)
                except Exception as error:  # Redis down or unreachable: the deadline is not pushed
                    if not failing:
                        log.warning("live lease renewal failed", service=self.service, error=str(error))
                    failing = True
                    continue
                failing = False
                if renewed:
                    self.renewed(sent)
                else:
                    self.lose("Redis refused the renewal: the lease expired or another token holds it")
        finally:
            deadline.cancel()

    def stop_keeping(self) -> None:
        """Finish `keep` after the renewal in flight, if any (cancelling one half-way can wedge the shared client)."""
        self._stop_keeping.set()

    async def _enforce_deadline(self) -> None:
        while self.valid():
            await asyncio.sleep(max(self.valid_until - time.monotonic(), 0.0) + 0.001)


class RoleWatcher:
    """Inside a service colour: reports its role every second and calls back when the live colour moves."""

    def __init__(self, control: DeploymentControl, colour: str, on_change: Callable[[Role], Awaitable[None]]) -> None:
        self.control = control
        self.colour = colour
        self.on_change = on_change
        self.role: Role | None = None
        self.since = time.time()
        self.ready = False  # set once the service runs in its role (components started, gRPC serving)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish after the Redis command in flight, if any: cancelling one half-way can wedge the shared client."""
        self._stopping.set()

    async def run(self, initial: Role) -> None:
        self.role = initial
        beat = time.monotonic()
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), POLL_S)
            if self._stopping.is_set():
                return
            try:
                role = await self.control.role_of(self.colour)
                if role != self.role:
                    self.role = role
                    await self.on_change(role)
                if time.monotonic() - beat >= 1.0:
                    await self.control.report(self.colour, self.role, self.since, self.ready)
                    beat = time.monotonic()
                failing = False
            except Exception as error:  # Redis unreachable: keep the role it has, try again
                if not failing:
                    log.warning("live colour unreadable", colour=self.colour, error=str(error))
                failing = True
