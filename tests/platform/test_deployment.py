"""Blue-green control in Redis: the live colour gives each colour its role; the live lease is held by
one colour at a time, waits for the holder to let go, and expires when a holder dies; the runner restarts a
service in its new role when the live colour moves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from trading_platform import deployment
from trading_platform.deployment import DeploymentControl
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


async def test_the_lease_is_exclusive_and_handed_over(
    redis_url: str, redis_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deployment, "LEASE_TTL_MS", 600)
    control = DeploymentControl.from_url(redis_url, "execution", redis_namespace)
    try:
        assert await control.acquire_lease("blue")
        waiting = asyncio.create_task(control.acquire_lease("green"))
        await asyncio.sleep(0.3)
        assert not waiting.done() and await control.lease_holder() == "blue"
        await control.release_lease("green")  # not the holder: nothing happens
        assert await control.lease_holder() == "blue"
        await control.release_lease("blue")
        assert await asyncio.wait_for(waiting, 2) and await control.lease_holder() == "green"
        # a holder that dies without releasing: its lease expires and the other colour gets it
        assert not await control.renew_lease("blue")
        taken = asyncio.create_task(control.acquire_lease("blue"))
        assert await asyncio.wait_for(taken, 3) and await control.lease_holder() == "blue"
    finally:
        await control.close()


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
