"""Identity events on the bus (identity.events.v1), each with its real actor, so the audit ledger records them.

A change the ledger cannot record is not made: `ready()` asks the cluster (one metadata round trip, bounded) before
a login issues tokens or an admin change is applied, and a publish the producer reports failed raises
`BusUnavailable` (a 503), so the caller can undo what it did. (A broker that goes away during a publish is not a
failure: the idempotent producer keeps the record and retries until it is back, and the change then stands.)
"""

from __future__ import annotations

import time
from typing import Any

from google.protobuf.message import Message
from trading.identity.v1 import identity_pb2
from trading_platform.envelope import new_envelope
from trading_platform.messaging import MessageTypeError, Publisher
from trading_platform.messaging.health import BusProbe
from trading_platform.observability import get_logger

from gateway_service.problems import BusUnavailable

TOPIC = "identity.events.v1"
ANONYMOUS = "anonymous"
PROBE_CACHE_S = 1.0  # one answer of the cluster stands for this long (a burst of logins asks once)
log = get_logger("gateway")


class IdentityEvents:
    def __init__(self, publisher: Publisher, producer: str = "gateway", probe: BusProbe | None = None) -> None:
        self.publisher = publisher
        self.producer = producer
        self.probe = probe or BusProbe(publisher.connection)
        self._probed_at = float("-inf")
        self._up = False

    async def ready(self) -> None:
        """Raise BusUnavailable when the cluster does not answer now (checked before a change is made)."""
        now = time.monotonic()
        if now - self._probed_at > PROBE_CACHE_S:
            self._up = await self.probe()
            self._probed_at = time.monotonic()
            if not self._up:
                log.warning("event bus unavailable: refusing changes", error=self.probe.last_error)
        if not self._up:
            raise BusUnavailable()

    async def publish(self, event: Message, *, actor: str, client_address: str, key: str) -> identity_pb2.IdentityEvent:
        """Publish one event (LoginSucceeded, RoleGranted...) in its IdentityEvent wrapper; returns the wrapper.
        BusUnavailable when the producer reports it failed (it will not be written)."""
        field = _FIELDS[type(event)]
        wrapper = identity_pb2.IdentityEvent(
            envelope=new_envelope(self.producer), actor=actor, client_address=client_address
        )
        getattr(wrapper, field).CopyFrom(event)
        try:
            await self.publisher.publish(TOPIC, wrapper, key=key)
        except MessageTypeError:
            raise
        except Exception as error:  # KafkaError, a timeout, a closed producer: the event is not recorded
            self._probed_at = float("-inf")
            log.error("identity event not published", event=field, error=f"{type(error).__name__}: {error}"[:300])
            raise BusUnavailable() from None
        return wrapper

    async def close(self) -> None:
        await self.probe.close()


_FIELDS: dict[type[Any], str] = {
    field.message_type._concrete_class: field.name  # type: ignore[attr-defined]
    for field in identity_pb2.IdentityEvent.DESCRIPTOR.oneofs_by_name["event"].fields
}
