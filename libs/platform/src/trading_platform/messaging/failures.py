"""Which handler errors are worth waiting out and which can never succeed (the consumer's retry policy).

- Permanent: the message itself is wrong (it does not decode, its schema or its fields do not validate). Trying
  again cannot help: it is dead-lettered at once. A handler says so with PermanentError (or a pydantic
  ValidationError / protobuf DecodeError escapes it).
- Transient: something the handler depends on is down or slow (the broker, a gRPC peer, Redis, an HTTP API, a
  timeout). The message is fine: it is retried with capped exponential backoff for a long, configurable time, and the
  consumer does not commit past it meanwhile. A handler can say so with TransientError.
- Anything else (a bug): retried a few times (Consumer(max_attempts=)), then dead-lettered as "handler_error", to be
  redriven once the bug is fixed (`tradectl dlq redrive`).
"""

from __future__ import annotations

import asyncio
from typing import Literal

import grpc
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from google.protobuf.message import DecodeError
from pydantic import ValidationError
from redis import exceptions as redis_errors

Kind = Literal["permanent", "transient", "unknown"]

TRANSIENT_GRPC_CODES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}


class PermanentError(Exception):
    """Raised by a handler for a message that can never succeed: it is dead-lettered at once, not retried."""

    def __init__(self, reason: str, reason_code: str = "handler_rejected") -> None:
        super().__init__(reason)
        self.reason_code = reason_code


class TransientError(Exception):
    """Raised by a handler when a dependency is down or slow: the message is retried with backoff for a long time."""


class Interrupted(Exception):
    """A retry wait was cut short (the consumer stops, or the record's partition is being revoked): the record stays
    uncommitted and is delivered again (to this consumer or the partition's next owner)."""


class RetryWaits:
    """Where a consumer's retry waits end early: on stop(), and for the records of partitions being revoked, so a
    message waiting out a transient error never holds up a rebalance."""

    def __init__(self, stopping: asyncio.Event) -> None:
        self.stopping = stopping
        self.revoking: set[TopicPartition] = set()
        self._changed = asyncio.Event()

    def begin_revoke(self, partitions: set[TopicPartition]) -> None:
        self.revoking |= partitions
        self._changed.set()

    def end_revoke(self, partitions: set[TopicPartition]) -> None:
        self.revoking -= partitions

    async def wait(self, partition: TopicPartition, seconds: float) -> None:
        """Sleep `seconds`, or raise Interrupted as soon as the consumer stops or `partition` is being revoked."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if self.stopping.is_set() or partition in self.revoking:
                raise Interrupted(f"a retry of {partition.topic}[{partition.partition}] was cut short")
            left = deadline - loop.time()
            if left <= 0:
                return
            self._changed.clear()
            waiters = [asyncio.ensure_future(self.stopping.wait()), asyncio.ensure_future(self._changed.wait())]
            try:
                await asyncio.wait(waiters, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()


def _transient_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [
        TransientError,
        ConnectionError,
        TimeoutError,
        KafkaConnectionError,
        KafkaTimeoutError,
        redis_errors.ConnectionError,
        redis_errors.TimeoutError,
        redis_errors.BusyLoadingError,
    ]
    try:
        import httpx

        types.append(httpx.TransportError)
    except ImportError:  # pragma: no cover - httpx is in the lock; a slim image may leave it out
        pass
    from trading_platform.messaging.connection import BrokerUnavailableError

    types.append(BrokerUnavailableError)
    return tuple(types)


TRANSIENT_TYPES = _transient_types()


def kind_of(error: BaseException) -> Kind:
    """Whether an error a handler raised is permanent, transient or unknown (module docstring)."""
    if isinstance(error, PermanentError | ValidationError | DecodeError):
        return "permanent"
    if isinstance(error, TRANSIENT_TYPES):
        return "transient"
    if isinstance(error, KafkaError) and getattr(error, "retriable", False):
        return "transient"
    if isinstance(error, grpc.aio.AioRpcError) and error.code() in TRANSIENT_GRPC_CODES:
        return "transient"
    return "unknown"


def reason_code_of(error: BaseException) -> str:
    """The dead letter's reason code for a permanent error."""
    if isinstance(error, PermanentError):
        return error.reason_code
    if isinstance(error, DecodeError):
        return "decode_error"
    return "validation_error"
