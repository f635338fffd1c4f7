"""Typed publish/subscribe over Kafka (aiokafka), the way every service uses the bus.

One module per job: `connection` (how a client reaches the cluster, credentials, bounded start), `names` (physical
topic names, record headers), `records` (ConsumedMessage, decoding), `producer` (Publisher: idempotent, optionally
transactional), `consumer` (Consumer: the committing and the transactional consume loops), `lanes` (key lanes),
`failures` (permanent or transient: the retry policy), `dead_letters`, `redrive` (list, show and redrive dead
letters), `idempotency` (handled-id stores), `replay` (replay, end_offsets) and `admin` (ensure_topics).
Every client is built from a KafkaConnection (or a bootstrap string for an unauthenticated cluster).
"""

from __future__ import annotations

from trading_platform.messaging.admin import ensure_topics
from trading_platform.messaging.connection import BrokerUnavailableError, KafkaConnection, connection_of
from trading_platform.messaging.consumer import DEFAULT_GROUP_OPTIONS, Consumer, ConsumerJoinError
from trading_platform.messaging.failures import PermanentError, TransientError
from trading_platform.messaging.idempotency import IdempotencyStore, MemoryIdempotencyStore, RedisIdempotencyStore
from trading_platform.messaging.names import HEADER_MESSAGE_TYPE, TopicNames
from trading_platform.messaging.producer import MessageTypeError, Publisher
from trading_platform.messaging.records import ConsumedMessage, Handler, decode_record
from trading_platform.messaging.replay import end_offsets, replay

__all__ = [
    "DEFAULT_GROUP_OPTIONS",
    "HEADER_MESSAGE_TYPE",
    "BrokerUnavailableError",
    "ConsumedMessage",
    "Consumer",
    "ConsumerJoinError",
    "Handler",
    "IdempotencyStore",
    "KafkaConnection",
    "MemoryIdempotencyStore",
    "MessageTypeError",
    "PermanentError",
    "Publisher",
    "RedisIdempotencyStore",
    "TopicNames",
    "TransientError",
    "connection_of",
    "decode_record",
    "end_offsets",
    "ensure_topics",
    "replay",
]
