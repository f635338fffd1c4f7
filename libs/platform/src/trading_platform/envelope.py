"""The envelope every message carries: ids, correlation and causation, ts_event / ts_init, producer, schema."""

from __future__ import annotations

import time
from typing import Protocol

from google.protobuf.message import Message
from trading.common.v1 import common_pb2

from trading_platform.ids import new_message_id

SCHEMA_VERSION = 1


class _NowNs(Protocol):
    def now_ns(self) -> int: ...


def new_envelope(
    producer: str,
    *,
    cause: common_pb2.Envelope | Message | None = None,
    correlation_id: str | None = None,
    ts_event: int | None = None,
    clock: _NowNs | None = None,
    message_id: str | None = None,
) -> common_pb2.Envelope:
    """A fresh envelope. With a cause (its envelope, or a message that has one) the chain is kept:
    correlation id copied from the cause, causation id = the cause's message id. Without one, the new
    message starts a chain and is its own correlation id."""
    now = clock.now_ns() if clock is not None else time.time_ns()
    cause_envelope = envelope_of(cause) if cause is not None else None
    mid = message_id or new_message_id()
    if cause_envelope is not None:
        correlation = correlation_id or cause_envelope.correlation_id or cause_envelope.message_id
        causation = cause_envelope.message_id
    else:
        correlation = correlation_id or mid
        causation = ""
    return common_pb2.Envelope(
        message_id=mid,
        correlation_id=correlation,
        causation_id=causation,
        ts_event=now if ts_event is None else ts_event,
        ts_init=now,
        producer=producer,
        schema_version=SCHEMA_VERSION,
    )


def envelope_of(message: common_pb2.Envelope | Message) -> common_pb2.Envelope:
    """The envelope of a message (every contract message has an `envelope` field)."""
    if isinstance(message, common_pb2.Envelope):
        return message
    if "envelope" not in message.DESCRIPTOR.fields_by_name:
        raise TypeError(f"{message.DESCRIPTOR.full_name} has no envelope field")
    envelope: common_pb2.Envelope = getattr(message, "envelope")  # noqa: B009 - every contract message has one
    return envelope
