"""Dead letters: a record that cannot be handled goes to `<topic>.dlq` as a DeadLetter, and the consumer carries on.

A DeadLetter keeps everything a redrive needs: the source record as it was (topic, partition, offset, key, value,
headers, timestamp) and why it was set aside (reason code, reason, the error's type, the attempts, the consumer
group; its envelope's ts_event is when). Which errors are dead-lettered, and when, is the consumer's retry policy
(trading_platform.messaging.failures). The publishing is Publisher.publish_dead_letter: in a transactional consume
loop the dead letter is part of the batch's transaction. `tradectl dlq` lists, shows and redrives them
(trading_platform.messaging.redrive).
"""

from __future__ import annotations

from trading.common.v1 import common_pb2

from trading_platform.envelope import new_envelope
from trading_platform.messaging.failures import PermanentError
from trading_platform.messaging.records import Record

__all__ = ["PermanentError", "dead_letter_of"]


def dead_letter_of(
    record: Record,
    consumer_group: str,
    headers: dict[str, bytes],
    reason_code: str,
    reason: str,
    *,
    error: BaseException | None = None,
    attempts: int = 0,
) -> common_pb2.DeadLetter:
    """The DeadLetter of a record: the record as it was (topic, partition, offset, key, value, headers, timestamp)
    and why."""
    return common_pb2.DeadLetter(
        envelope=new_envelope(consumer_group),
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        key=record.key or b"",
        value=record.value or b"",
        headers=headers,
        reason_code=reason_code,
        reason=reason,
        consumer_group=consumer_group,
        error_type=type(error).__name__ if error is not None else "",
        source_timestamp_ms=record.timestamp or 0,
        attempts=attempts,
    )
