"""Who is calling: the identity every authenticated gRPC call and REST request carries, and the token contract.

The server interceptor (rpc.py) verifies the caller and sets `current_identity()` for the duration of the call; the
gateway does the same for REST requests. Code that records an actor (the audit ledger, four-eyes approvals) reads it
from here, never from a field of the request.

Access tokens are JWTs signed by the gateway with EdDSA (Ed25519). Their claims:
  iss = ISSUER, aud = AUDIENCE, sub = the username, roles = the user's roles (list of ROLES), sid = the session id,
  typ = "access", jti = a unique id, iat / exp (short-lived). The header's `kid` names the signing key in the JWKS.
Refresh tokens are opaque strings, never JWTs: a refresh token can therefore never pass as an access token.
API keys are exchanged at the gateway for an access token; services only ever see access tokens.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

ISSUER = "trading-gateway"
AUDIENCE = "trading-platform"
ACCESS_TOKEN_TYPE = "access"
TOKEN_METADATA_KEY = "authorization"  # gRPC metadata and HTTP header: "Bearer <access token>"

VIEWER = "viewer"
TRADER = "trader"
RISK_OFFICER = "risk-officer"
MODEL_MANAGER = "model-manager"
OPERATOR = "operator"
ADMIN = "admin"
ROLES: tuple[str, ...] = (VIEWER, TRADER, RISK_OFFICER, MODEL_MANAGER, OPERATOR, ADMIN)
READ_ONLY_ROLES = frozenset({VIEWER})  # every other role can change something, so it needs a second factor


@dataclass(frozen=True)
class Identity:
    """A verified caller. `subject` is the username for a user, the service name (from its certificate) for a service.

    A user's call relayed by a service (the gateway calling risk with the user's token) is the user's identity, with
    `via` naming the relaying service."""

    subject: str
    kind: Literal["user", "service"]
    roles: frozenset[str] = field(default_factory=frozenset)
    session_id: str = ""
    via: str = ""

    @property
    def actor(self) -> str:
        """How the audit ledger names this caller: `user:alice`, `service:order-management`."""
        return f"{self.kind}:{self.subject}"

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


_current: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("trading_identity", default=None)


def current_identity() -> Identity | None:
    """The verified caller of the call being handled, or None outside an authenticated call."""
    return _current.get()


@contextmanager
def identity_scope(identity: Identity | None) -> Iterator[None]:
    """Run a block as `identity` (the interceptor does this around each call; tests of one engine may too)."""
    token = _current.set(identity)
    try:
        yield
    finally:
        _current.reset(token)
