"""The broker budget on a virtual clock: every call execution makes stays within the broker's sliding minute, and a
storm of submits leaves the reserved part to the look-ups and reads."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from execution_service.budget import BrokerBudget
from trading_simulation.loop import VirtualTimeLoop

from tests.benchmarks.stats import most_in_any_window


def on_virtual_time(work: Coroutine[Any, Any, Any]) -> Any:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(work)
    finally:
        loop.close()


async def storm(budget: BrokerBudget, submits: int, reads: int, read_every_s: float) -> dict[str, list[float]]:
    """`submits` submits all at once, and a read every read_every_s meanwhile: when each went to the broker, and
    how long each read waited."""
    loop = asyncio.get_running_loop()
    sent: dict[str, list[float]] = {"submits": [], "reads": [], "read_waits": []}

    async def submit() -> None:
        await budget.submit_turn()
        sent["submits"].append(loop.time())

    async def read() -> None:
        asked = loop.time()
        await budget.call(lambda: None)
        sent["reads"].append(loop.time())
        sent["read_waits"].append(loop.time() - asked)

    tasks = [asyncio.create_task(submit()) for _ in range(submits)]
    for _ in range(reads):
        tasks.append(asyncio.create_task(read()))
        await asyncio.sleep(read_every_s)
    await asyncio.gather(*tasks)
    return sent


def test_a_storm_of_submits_stays_within_the_brokers_minute_and_leaves_room_for_reads() -> None:
    sent = on_virtual_time(storm(BrokerBudget(200, 20), submits=1000, reads=100, read_every_s=4.0))
    every_call = sent["submits"] + sent["reads"]
    assert most_in_any_window(every_call, 60) <= 200  # never a 429 from the broker's sliding minute
    assert most_in_any_window(sent["submits"], 60) <= 180  # the reserved 20 are never the submits'
    minutes = (max(sent["submits"]) - min(sent["submits"])) / 60
    assert 1000 / minutes >= 170  # and the submits still use nearly all of their share
    assert max(sent["read_waits"]) < 5.0  # a read during the storm is not queued behind it


def test_a_small_budget_is_never_exceeded_either() -> None:
    sent = on_virtual_time(storm(BrokerBudget(5, 1), submits=30, reads=10, read_every_s=20.0))
    assert most_in_any_window(sent["submits"] + sent["reads"], 60) <= 5
    assert most_in_any_window(sent["submits"], 60) <= 4
