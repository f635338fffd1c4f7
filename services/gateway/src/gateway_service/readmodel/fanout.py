"""Fan-out of the read model's updates to live subscribers, none of which can hold up the others or the read model.

`publish(channel, data)` numbers the update (a sequence increasing by one per update, across channels) and puts it
in the queue of every subscriber of that channel without waiting. Each queue is bounded (`queue_size`): a subscriber
whose queue is full has fallen behind; it is dropped, and its last item is the `dropped` update saying so (what was
still queued is discarded), after which its iteration ends. A subscriber reads with `async for channel, data in
subscription` and finds the sequence number of the update it just got in `subscription.last_seq`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DROPPED = "dropped"
_END = object()


@dataclass(eq=False)
class Subscription:
    channels: frozenset[str]
    queue: asyncio.Queue[tuple[int, str, Any]]
    fanout: Fanout
    last_seq: int = 0
    dropped: bool = False
    closed: bool = field(default=False)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> tuple[str, dict[str, Any]]:
        """The next update; the iteration ends after the `dropped` notice, or when the fan-out closes."""
        if self.closed and self.queue.empty():
            raise StopAsyncIteration
        seq, channel, data = await self.queue.get()
        if data is _END:
            self.close()
            raise StopAsyncIteration
        self.last_seq = seq
        if channel == DROPPED:
            self.close()
        return channel, data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.fanout._subscribers.discard(self)


class Fanout:
    def __init__(self, queue_size: int = 1000) -> None:
        if queue_size < 2:
            raise ValueError("queue_size: at least 2 (an update and the final dropped notice)")
        self.queue_size = queue_size
        self.seq = 0
        self.dropped = 0
        self._subscribers: set[Subscription] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        subscription = Subscription(frozenset(channels), asyncio.Queue(self.queue_size), self)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, channel: str, data: dict[str, Any]) -> int:
        self.seq += 1
        for subscription in list(self._subscribers):
            if channel not in subscription.channels:
                continue
            queue = subscription.queue
            if queue.qsize() < self.queue_size - 1:
                queue.put_nowait((self.seq, channel, data))
                continue
            self._drop(subscription, f"fell behind: {self.queue_size - 1} updates were waiting for it")
        return self.seq

    def _drop(self, subscription: Subscription, reason: str) -> None:
        queued = subscription.queue.qsize()
        while not subscription.queue.empty():
            subscription.queue.get_nowait()
        subscription.queue.put_nowait((self.seq, DROPPED, {"reason": reason, "discarded": queued, "seq": self.seq}))
        subscription.dropped = True
        self._subscribers.discard(subscription)
        self.dropped += 1

    def close(self) -> None:
        """End every subscription (the gateway stops): each iteration ends after what it has queued."""
        for subscription in list(self._subscribers):
            self._subscribers.discard(subscription)
            if subscription.queue.full():
                subscription.queue.get_nowait()
            subscription.queue.put_nowait((self.seq, "", _END))
