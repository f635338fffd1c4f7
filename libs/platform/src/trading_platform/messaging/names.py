"""How a registry topic and a message look on the wire: physical topic names and record headers.

Two name transformations apply to every topic: a `namespace` prefix (test isolation: each test gets its own topics)
and shadow mode (the idle blue-green colour publishes to `shadow.<topic>` and consumes in `<group>-shadow`). A
record carries its message type, the envelope's fields and the W3C trace context in Kafka headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message
from opentelemetry import propagate

from trading_platform.envelope import envelope_of
from trading_platform.topics import DLQ_SUFFIX, SHADOW_PREFIX, lookup

HEADER_MESSAGE_TYPE = "message_type"
ENVELOPE_HEADERS = ("message_id", "correlation_id", "causation_id", "ts_event", "producer", "schema_version")


@dataclass(frozen=True)
class TopicNames:
    """Maps registry names to the physical topic names of one deployment (namespace, shadow colour)."""

    namespace: str = ""
    shadow: bool = False

    def physical(self, name: str) -> str:
        topic = lookup(name)  # raises UnknownTopicError for anything not registered
        base = SHADOW_PREFIX + topic.name if self.shadow and not topic.name.endswith(DLQ_SUFFIX) else topic.name
        return self.namespace + base

    def physical_input(self, name: str) -> str:
        """Inputs are read from the live topics even in shadow mode (the shadow colour sees the same inputs)."""
        return self.namespace + lookup(name).name

    def dead_letters(self, source_topic: str) -> str:
        """Dead letters go to the live `<topic>.dlq`, even from a shadow colour."""
        return self.namespace + lookup(source_topic).name + DLQ_SUFFIX

    def logical(self, physical: str) -> str:
        name = physical[len(self.namespace) :] if self.namespace and physical.startswith(self.namespace) else physical
        return name


def headers_for(message: Message, message_type: str) -> list[tuple[str, bytes]]:
    """The headers of a record: its message type, the envelope's fields, and the current trace context."""
    envelope = envelope_of(message)
    headers = [(HEADER_MESSAGE_TYPE, message_type.encode())]
    headers += [(name, str(getattr(envelope, name)).encode()) for name in ENVELOPE_HEADERS]
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    headers += [(k, v.encode()) for k, v in carrier.items()]
    return headers
