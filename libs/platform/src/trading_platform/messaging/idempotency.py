"""Idempotency stores: which message ids a consumer has already handled, so a redelivered message is skipped.

A consumer asks `seen(message_id)` before its handler and calls `mark(message_id)` only after the handler succeeded.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from redis.asyncio import Redis


class IdempotencyStore(Protocol):
    async def seen(self, message_id: str) -> bool: ...

    async def mark(self, message_id: str) -> None: ...


class MemoryIdempotencyStore:
    """Remembers handled message ids in process (for services whose state is rebuilt with the ids, and tests).

    With `max_ids`, only the most recent ids are kept (the oldest forgotten first): enough for what a consumer sees
    again (the records after its last commit, redelivered after a crash or a rebalance), in bounded memory."""

    def __init__(self, max_ids: int | None = None) -> None:
        if max_ids is not None and max_ids < 1:
            raise ValueError("max_ids must be at least 1 (or None: remember every id)")
        self._ids: set[str] = set()
        self._order: deque[str] | None = deque() if max_ids is not None else None
        self.max_ids = max_ids

    def __len__(self) -> int:
        return len(self._ids)

    async def seen(self, message_id: str) -> bool:
        return message_id in self._ids

    async def mark(self, message_id: str) -> None:
        if message_id in self._ids:
            return
        self._ids.add(message_id)
        if self._order is not None:
            self._order.append(message_id)
            if len(self._order) > self.max_ids:  # type: ignore[operator]
                self._ids.discard(self._order.popleft())


class RedisIdempotencyStore:
    """Handled message ids in Redis, so a restarted consumer (or another pod of it) skips them too."""

    def __init__(self, redis_client: Redis, namespace: str, ttl_s: int = 7 * 24 * 3600) -> None:
        self._redis = redis_client  # a redis.asyncio.Redis
        self._prefix = f"{namespace}:handled:"
        self._ttl_s = ttl_s

    def key(self, message_id: str) -> str:
        """The Redis key that marks a message handled: a handler whose effect is in Redis sets it in the same
        MULTI/EXEC as its effect, so effect and mark are atomic."""
        return self._prefix + message_id

    async def seen(self, message_id: str) -> bool:
        return bool(await self._redis.exists(self.key(message_id)))

    async def mark(self, message_id: str) -> None:
        await self._redis.set(self.key(message_id), b"1", ex=self._ttl_s)
