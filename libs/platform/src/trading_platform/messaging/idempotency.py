"""Idempotency stores: which message ids a consumer has already handled, so a redelivered message is skipped.

A consumer asks `seen(message_id)` before its handler and calls `mark(message_id)` only after the handler succeeded.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis


class IdempotencyStore(Protocol):
    async def seen(self, message_id: str) -> bool: ...

    async def mark(self, message_id: str) -> None: ...


class MemoryIdempotencyStore:
    """Remembers handled message ids in process (for services whose state is rebuilt with the ids, and tests)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    async def seen(self, message_id: str) -> bool:
        return message_id in self._ids

    async def mark(self, message_id: str) -> None:
        self._ids.add(message_id)


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
