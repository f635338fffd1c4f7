"""Identifiers: message ids and the deterministic client order id (docs/architecture.md invariant 2)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

# Alpaca accepts client order ids of up to 128 characters; ours are much shorter and URL-safe.
CLIENT_ORDER_ID_PREFIX = "co"


def random_message_id() -> str:
    """A random (version 4) UUID in its canonical form, as str(uuid.uuid4()) gives, built from os.urandom directly:
    market data takes one per record, thousands a second, and uuid.UUID's formatting was most of the cost."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Where message ids come from: the deterministic simulation puts a seeded source here for the length of a run.
message_id_source: Callable[[], str] = random_message_id


def new_message_id() -> str:
    return message_id_source()


def client_order_id(strategy_id: str, decision_id: str, symbol: str, leg: int = 0) -> str:
    """The client order id of one leg of one decision: the same inputs always give the same id.

    The decision id is unique per decision (a signal id, or a manual request's id), so an id is never reused
    for a different order; re-deriving it after a crash finds the order that may already be at the broker.
    """
    for name, part in (("strategy_id", strategy_id), ("decision_id", decision_id), ("symbol", symbol)):
        if not part:
            raise ValueError(f"client_order_id needs a non-empty {name}")
    if leg < 0:
        raise ValueError("leg must be >= 0")
    digest = hashlib.sha256(f"{strategy_id}\x1f{decision_id}\x1f{symbol}\x1f{leg}".encode()).hexdigest()
    return f"{CLIENT_ORDER_ID_PREFIX}-{symbol.lower()}-{digest[:24]}-{leg}"
