"""What a consumer hands a handler: a fetched record decoded into its registry message (ConsumedMessage).

A record that cannot be a message of its topic (no value, not the topic's type, no envelope.message_id) is a
BadRecord: the live consumer dead-letters it, a replay skips it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from aiokafka.structs import ConsumerRecord
from google.protobuf.message import DecodeError, Message
from trading.common.v1 import common_pb2

from trading_platform.envelope import SCHEMA_VERSION, envelope_of
from trading_platform.topics import Topic, lookup

Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True)
class ConsumedMessage:
    topic: str  # the registry name (namespace and shadow prefix removed)
    partition: int
    offset: int
    key: str | None
    value: Message
    headers: dict[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0

    @property
    def envelope(self) -> common_pb2.Envelope:
        return envelope_of(self.value)


Handler = Callable[[ConsumedMessage], Awaitable[None]]


class BadRecord(Exception):
    """A record that can never be a message of its topic; `reason_code` goes into its dead letter."""

    def __init__(self, reason_code: str, reason: str) -> None:
        super().__init__(reason)
        self.reason_code = reason_code
        self.reason = reason


def decode(topic: Topic, raw: bytes | None) -> Message:
    """The record value as the topic's message, or BadRecord."""
    if raw is None:
        raise BadRecord("empty_value", "record has no value (tombstone) on a topic that carries messages")
    try:
        value = topic.message_type.FromString(raw)
    except (DecodeError, ValueError) as error:
        raise BadRecord("decode_error", f"not a {topic.type_name}: {error}") from error
    envelope = envelope_of(value)
    if not envelope.message_id:
        raise BadRecord("invalid_envelope", f"{topic.type_name} without envelope.message_id")
    if not 1 <= envelope.schema_version <= SCHEMA_VERSION:
        # A producer newer than this consumer (or one that never set it): its fields may mean what this code does
        # not know, so the record is set aside rather than half-understood.
        raise BadRecord(
            "unknown_schema_version",
            f"{topic.type_name} with schema_version {envelope.schema_version}; this consumer knows 1..{SCHEMA_VERSION}",
        )
    return value


def consumed(topic: Topic, record: Record, value: Message) -> ConsumedMessage:
    key = record.key.decode(errors="replace") if record.key is not None else None
    return ConsumedMessage(
        topic.name, record.partition, record.offset, key, value, dict(record.headers or ()), record.timestamp
    )


def decode_record(topic_name: str, raw: bytes) -> Message:
    """Decode one record of a registered topic (used by `tradectl tail`)."""
    return lookup(topic_name).message_type.FromString(raw)
