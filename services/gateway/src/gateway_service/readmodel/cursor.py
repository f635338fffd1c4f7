"""Opaque, tamper-evident page cursors.

A cursor names where the next page starts (a row's time and key) and which list it belongs to (the route and its
filters, hashed): `base64url(json) + "." + HMAC-SHA256` under a key of this process. A cursor that was altered, made
by another gateway process (or before a restart), or brought to another list or other filters is refused with
`InvalidCursor`, which the routes answer as 400 naming `cursor`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

from gateway_service.readmodel.tables import Position

MAX_CURSOR_LENGTH = 512


class InvalidCursor(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:16])

    @staticmethod
    def scope(route: str, filters: dict[str, object]) -> str:
        """What a cursor is bound to: the list and its filters (a cursor is only good for the query that made it)."""
        canonical = json.dumps([route, {k: v for k, v in sorted(filters.items()) if v is not None}], default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def encode(self, position: Position, scope: str) -> str:
        body = _b64(json.dumps([position[0], position[1], scope], separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def decode(self, cursor: str, scope: str) -> Position:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidCursor("cursor: too long")
        body, dot, mac = cursor.partition(".")
        if not dot or not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidCursor("cursor: not a cursor this gateway issued (altered, or from before a restart)")
        try:
            ts_ns, key, bound = json.loads(_unb64(body))
        except (ValueError, TypeError) as error:
            raise InvalidCursor("cursor: malformed") from error
        if bound != scope:
            raise InvalidCursor("cursor: issued for another list or other filters")
        if not isinstance(ts_ns, int) or not isinstance(key, str):
            raise InvalidCursor("cursor: malformed")
        return ts_ns, key
