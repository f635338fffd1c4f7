"""Dead letters: a record that cannot be handled goes to `<topic>.dlq` as a DeadLetter with the reason, and the
consumer carries on. A handler raises PermanentError for a message that can never succeed (dead-lettered at once);
anything else is retried a bounded number of times first (trading_platform.messaging.consumer). The publishing is
Publisher.publish_dead_letter: in a transactional consume loop the dead letter is part of the batch's transaction.
"""

from __future__ import annotations

from trading.common.v1 import common_pb2

from trading_platform.envelope import new_envelope
from trading_platform.messaging.records import Record


class PermanentError(Exception):
    """Raised by a handler for a message that can never succeed: it is dead-lettered at once, not retried."""

    def __init__(self, reason: str, reason_code: str = "handler_rejected") -> None:
        super().__init__(reason)
        self.reason_code = reason_code


def dead_letter_of(
    record: Record, consumer_group: str, headers: dict[str, bytes], reason_code: str, reason: str
) -> common_pb2.DeadLetter:
    """The DeadLetter of a record: the record as it was (topic, partition, offset, key, value, headers) and why."""
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
    )
