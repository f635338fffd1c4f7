"""The broker's request budget, shared by every REST call execution makes.

Alpaca counts the requests of an account over a sliding minute and answers 429 past its limit. Submits, the look-ups
that resolve an ambiguous submit, cancels, the catch-up after a stream gap and the account reads all draw on one
budget, so a storm of submits neither runs the broker into 429s nor starves the calls that resolve and report
orders: submits never take the reserved part. Each part is a sliding window like the broker's, a second longer (a
request is counted here when it leaves and there when it arrives), served in the order the calls asked.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
WINDOW_S = 61.0  # the broker's minute, and a second for the time a request travels
EPSILON_S = 1e-6


class SlidingWindow:
    """At most `limit` acquisitions in any WINDOW_S, first come first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent: deque[float] = deque()
        self.turn = asyncio.Lock()  # FIFO: a call waits behind those that asked before it

    async def room(self) -> None:
        """Wait until there is room (the caller holds the turn, so nobody else takes it meanwhile)."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self.sent and self.sent[0] + WINDOW_S <= now + EPSILON_S:
                self.sent.popleft()
            if len(self.sent) < self.limit:
                return
            await asyncio.sleep(self.sent[0] + WINDOW_S - now)

    def take(self, at: float) -> float:
        """Count a request sent at `at` (loop time); the caller holds the turn and found room."""
        self.sent.append(at)
        return at

    async def acquire(self) -> float:
        """Wait for room, take it; the loop time it was taken at."""
        async with self.turn:
            await self.room()
            return self.take(asyncio.get_running_loop().time())


class BrokerBudget:
    def __init__(self, requests_per_minute: int, reserved_per_minute: int) -> None:
        self.every_call = SlidingWindow(requests_per_minute)
        self.submits = SlidingWindow(requests_per_minute - reserved_per_minute)

    async def submit_turn(self) -> None:
        """Wait for a submit's turn: its share of the minute, then a place in the whole budget."""
        async with self.submits.turn:  # submits wait for their share without holding up the other calls
            await self.submits.room()
            self.submits.take(await self.every_call.acquire())

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Any other broker call, in a worker thread once the budget has room for it."""
        await self.every_call.acquire()
        return await asyncio.to_thread(function, *args)
