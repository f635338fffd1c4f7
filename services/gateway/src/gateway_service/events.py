"""Identity events on the bus (identity.events.v1), each with its real actor, so the audit ledger records them."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from trading.identity.v1 import identity_pb2
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher

TOPIC = "identity.events.v1"
ANONYMOUS = "anonymous"


class IdentityEvents:
    def __init__(self, publisher: Publisher, producer: str = "gateway") -> None:
        self.publisher = publisher
        self.producer = producer

    async def publish(self, event: Message, *, actor: str, client_address: str, key: str) -> identity_pb2.IdentityEvent:
        """Publish one event (LoginSucceeded, RoleGranted...) in its IdentityEvent wrapper; returns the wrapper."""
        field = _FIELDS[type(event)]
        wrapper = identity_pb2.IdentityEvent(
            envelope=new_envelope(self.producer), actor=actor, client_address=client_address
        )
        getattr(wrapper, field).CopyFrom(event)
        await self.publisher.publish(TOPIC, wrapper, key=key)
        return wrapper


_FIELDS: dict[type[Any], str] = {
    field.message_type._concrete_class: field.name  # type: ignore[attr-defined]
    for field in identity_pb2.IdentityEvent.DESCRIPTOR.oneofs_by_name["event"].fields
}
