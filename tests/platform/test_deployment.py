"""Blue-green control in Redis: the live colour gives each colour its role; the live lease is held by one colour at a
time with an increasing fencing token, waits for the holder to let go, and expires when a holder dies; a holder whose
renewals stop refuses to act before anyone else can acquire; the runner restarts a service in its new role when the
live colour moves, and stops (NOT_SERVING) when it loses the lease."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trading_platform import deployment, rpc
from trading_platform.deployment import DeploymentControl, LeaseGuard, LeaseLost
from trading_platform.service import ServiceParts, run
from trading_platform.settings import ServiceSettings, load_settings

pytestmark = pytest.mark.integration


async def test_roles_follow_the_live_colour_and_history_is_kept(redis_url: str, redis_namespace: str) -> None:
    control = DeploymentControl.from_url(redis_url, "signal", redis_namespace)
    try:
        assert await control.live_colour() == "blue"
        assert (await control.role_of("blue"), await control.role_of("green")) == ("live", "shadow")
        await control.set_live("green", {"from_colour": "blue", "to_colour": "green"})
        assert (await control.role_of("blue"), await control.role_of("green")) == ("shadow", "live")
        assert [h["to_colour"] for h in await control.history()] == ["green"]
        with pytest.raises(ValueError, match="colour"):
            await control.set_live("purple", {})
    finally:
        await control.close()


async def test_the_lease_is_exclusive_handed_over_and_its_tokens_increase(
    redis_url: str, redis_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deployment, "LEASE_TTL_MS", 2000)
    control = DeploymentControl.from_url(redis_url, "execution", redis_namespace)
    try:
        blue = await control.acquire_lease("blue")
        assert blue is not None and await control.lease() == ("blue", blue)
        waiting = asyncio.create_task(control.acquire_lease("green"))
        again = asyncio.create_task(control.acquire_lease("blue"))  # its own colour waits too: no shortcut
        await asyncio.sleep(0.3)
        assert not waiting.done() and not again.done() and await control.lease_holder() == "blue"
        again.cancel()
        assert not await control.release_lease("green", blue)  # not the holder: nothing happens
        assert await control.lease_holder() == "blue"
        assert await control.release_lease("blue", blue)
        green = await asyncio.wait_for(waiting, 2)
        assert green is not None and green > blue and await control.lease() == ("green", green)
        # a holder that dies without releasing: its lease expires and the other colour gets it, with a new token
        taken = asyncio.create_task(control.acquire_lease("blue"))
        later = await asyncio.wait_for(taken, 3)
        assert later is not None and later > green and await control.lease() == ("blue", later)
    finally:
        await control.close()


async def test_a_stale_token_can_neither_renew_nor_release(
    redis_url: str, redis_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timings with room for a busy machine (a renewal every 0.2 s may stall for a few hundred ms under load).
    monkeypatch.setattr(deployment, "LEASE_TTL_MS", 2000)
    monkeypatch.setattr(deployment, "LEASE_MARGIN_MS", 700)
    control = DeploymentControl.from_url(redis_url, "execution", redis_namespace)
    try:
        old = await control.acquire_lease("blue")
        assert old is not None
        guard = LeaseGuard("execution")
        guard.hold("blue", old, time.monotonic())
        lost: list[str] = []
        guard.on_lost.append(lost.append)
        keeping = asyncio.create_task(guard.keep(control))
        await asyncio.sleep(2.5)  # longer than the TTL: kept alive by the renewals
        assert guard.valid() and await control.lease() == ("blue", old)
        # Another process of the same colour takes a new token (here: after the old lease vanished from Redis).
        await control.redis.delete(control.prefix + "lease")
        new = await control.try_acquire_lease("blue")
        assert new is not None and new > old
        await asyncio.wait_for(keeping, 2)  # Redis refused the next renewal: lost at once, renewing stops
        assert not guard.valid() and lost and "refused the renewal" in lost[0]
        assert not await control.renew_lease("blue", old)
        assert not await control.release_lease("blue", old)
        assert await control.lease() == ("blue", new)  # untouched by the stale holder
        assert await control.renew_lease("blue", new) and await control.release_lease("blue", new)
    finally:
        await control.close()


async def test_a_holder_whose_renewals_stop_refuses_before_another_can_acquire(
    redis_url: str, redis_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timings with room for a busy machine (a renewal every 0.2 s may stall for a few hundred ms under load).
    monkeypatch.setattr(deployment, "LEASE_TTL_MS", 3000)
    monkeypatch.setattr(deployment, "LEASE_MARGIN_MS", 1000)
    holder = DeploymentControl.from_url(redis_url, "execution", redis_namespace)
    rival = DeploymentControl.from_url(redis_url, "execution", redis_namespace)
    renewing = asyncio.Event()
    renewing.set()
    real_renew = holder.renew_lease

    async def renew(colour: str, token: int) -> bool:
        await renewing.wait()  # paused: the renewal hangs, like a call to Redis behind a partition
        return await real_renew(colour, token)

    monkeypatch.setattr(holder, "renew_lease", renew)
    guard = LeaseGuard("execution")
    lost_at: list[float] = []
    guard.on_lost.append(lambda reason: lost_at.append(time.monotonic()))
    try:
        sent = time.monotonic()
        token = await holder.try_acquire_lease("blue")
        assert token is not None
        guard.hold("blue", token, sent)
        keeping = asyncio.create_task(guard.keep(holder))
        await asyncio.sleep(1.0)
        guard.check("submit order o-1")  # renewed all along: allowed
        renewing.clear()
        paused_at = time.monotonic()
        green = asyncio.create_task(rival.acquire_lease("green"))
        for _ in range(250):  # the local deadline flips it (health NOT_SERVING) without any act asking
            if lost_at:
                break
            await asyncio.sleep(0.02)
        assert lost_at and lost_at[0] - paused_at <= deployment.lease_window_s() + 0.3
        assert not green.done()  # the rival cannot acquire yet: Redis still has the old lease
        with pytest.raises(
            LeaseLost, match=rf"execution \(blue\) refuses to submit order o-2: live lease token {token}"
        ):
            guard.check("submit order o-2")
        green_token = await asyncio.wait_for(green, 6)
        acquired_at = time.monotonic()
        assert green_token is not None and green_token > token
        assert acquired_at - lost_at[0] >= 0.5  # stopped acting at least about the margin before the rival began
        assert acquired_at - paused_at >= 3.0 - 0.25  # a lease, not released, is taken only once its TTL has passed
        renewing.set()  # the partition heals: the old token is refused and stays refused
        await asyncio.wait_for(keeping, 2)
        assert not guard.valid() and await holder.lease() == ("green", green_token)
    finally:
        renewing.set()
        await holder.close()
        await rival.close()


def test_an_unarmed_guard_allows_and_an_armed_one_names_service_and_token() -> None:
    guard = LeaseGuard("market-data")
    guard.check("publish broker bars")  # no blue-green: nothing to fence
    guard.hold("green", 41, time.monotonic() - 60)  # its last renewal long ago
    with pytest.raises(LeaseLost) as refused:
        guard.check("publish broker bars")
    error = refused.value
    assert (error.service, error.colour, error.token) == ("market-data", "green", 41)
    assert "market-data (green) refuses to publish broker bars: live lease token 41 not held" in str(error)
    guard.hold("green", 42, time.monotonic())
    guard.check("publish broker bars")
    guard.released()
    with pytest.raises(LeaseLost, match="released"):
        guard.check("publish broker bars")


class Recorder:
    def __init__(self, log: list[str], role: str) -> None:
        self.log, self.role = log, role

    async def start(self) -> None:
        self.log.append(f"start {self.role}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.role}")


async def test_the_runner_restarts_in_the_new_role(redis_url: str, redis_namespace: str) -> None:
    settings = load_settings(
        ServiceSettings,
        service_name="execution",
        kafka={"bootstrap_servers": "unused:9092", "namespace": redis_namespace},
        redis={"url": redis_url},
        deployment={"colour": "green", "blue_green": True},
    )
    log: list[str] = []

    async def build(current: Any) -> ServiceParts:
        return ServiceParts(components=[Recorder(log, current.deployment.role)], live_lease=True)

    stop = asyncio.Event()
    control = DeploymentControl.from_url(redis_url, "execution", redis_namespace)
    task = asyncio.create_task(run(settings, build, stop))
    try:

        async def until(expected: list[str]) -> None:
            for _ in range(50):
                if log == expected:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"{log} != {expected}")

        await until(["start shadow"])
        assert await control.lease_holder() is None  # the shadow colour holds no broker connection
        await control.set_live("green", {})
        await until(["start shadow", "stop shadow", "start live"])
        assert await control.lease_holder() == "green"
        reported = await control.reported("green")
        assert reported["role"] == "live" and reported["ready"] == "1"
        await control.set_live("blue", {})
        await until(["start shadow", "stop shadow", "start live", "stop live", "start shadow"])
        assert await control.lease_holder() is None  # released when it stopped being live
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await control.close()


async def test_the_runner_stops_when_its_lease_is_taken_and_waits_for_it_again(
    redis_url: str, redis_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timings with room for a busy machine (a renewal every 0.2 s may stall for a few hundred ms under load).
    monkeypatch.setattr(deployment, "LEASE_TTL_MS", 3000)
    monkeypatch.setattr(deployment, "LEASE_MARGIN_MS", 1000)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings(
        ServiceSettings,
        service_name="execution",
        kafka={"bootstrap_servers": "unused:9092", "namespace": redis_namespace},
        redis={"url": redis_url},
        grpc={"port": port, "grace_s": 0.1},
        deployment={"colour": "blue", "blue_green": True},
    )
    log: list[str] = []
    guards: list[LeaseGuard] = []

    async def build(current: Any) -> ServiceParts:
        guards.append(LeaseGuard("execution"))
        return ServiceParts(components=[Recorder(log, current.deployment.role)], lease=guards[-1])

    stop = asyncio.Event()
    control = DeploymentControl.from_url(redis_url, "execution", redis_namespace)
    channel = rpc.channel(f"127.0.0.1:{port}")
    health = health_pb2_grpc.HealthStub(channel)

    async def status() -> int:
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
            return int(reply.status)
        except grpc.aio.AioRpcError:
            return health_pb2.HealthCheckResponse.NOT_SERVING  # between two servers: not serving either

    async def until(check: Any, what: str) -> None:
        for _ in range(100):
            if await check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what}: {log}")

    task = asyncio.create_task(run(settings, build, stop))
    try:

        async def serving() -> bool:
            return log == ["start live"] and await status() == health_pb2.HealthCheckResponse.SERVING

        await until(serving, "live and serving")
        first = guards[0].token
        assert first is not None and await control.lease() == ("blue", first)
        # Another holder takes the lease (its token replaces this one's): the runner stops acting at once.
        await control.redis.delete(control.prefix + "lease")
        other = await control.try_acquire_lease("green")
        assert other is not None and other > first

        async def stopped() -> bool:
            return log == ["start live", "stop live"] and await status() == health_pb2.HealthCheckResponse.NOT_SERVING

        await until(stopped, "stopped on losing the lease")
        assert guards[0].lost and not guards[0].valid()
        assert await control.lease() == ("green", other)  # its release did not touch the other holder's lease
        await control.release_lease("green", other)

        async def back() -> bool:
            return (
                log == ["start live", "stop live", "start live"]
                and await status() == health_pb2.HealthCheckResponse.SERVING
            )

        await until(back, "live again with a new token")
        assert guards[-1].token is not None and guards[-1].token > other
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await channel.close()
        await control.close()
