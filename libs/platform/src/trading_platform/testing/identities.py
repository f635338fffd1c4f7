"""Identities for tests, obtained the way the platform obtains them: service certificates issued by the dev PKI in
the test Vault, and user access tokens signed by a key whose public JWK is published to Vault where (and how) the
gateway publishes its JWKS (`secret/trading/gateway/jwks`, field `jwks`, merged with the keys already there).

A test's gRPC servers verify callers exactly as a service does (certificate, token, revocation in Redis, policy).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import hvac
import redis

from trading_platform import pki, rpc, tokens
from trading_platform import vault as vault_module
from trading_platform.devstack import PKI_IDENTITIES, DevStack, StackPorts, free_port
from trading_platform.identity import VIEWER


class TestIdentities:
    __test__ = False  # not a test class

    def __init__(self, vault_addr: str, vault_token: str, redis_url: str) -> None:
        self.vault = hvac.Client(url=vault_addr, token=vault_token)
        pki.ensure_pki(self.vault, PKI_IDENTITIES)
        self.redis_url = redis_url
        self.signing_key = tokens.generate_key()
        self.kid = "test-" + tokens.new_kid()
        self._certificates: dict[str, pki.CertificateKeeper] = {}

    # -- services ------------------------------------------------------------------------------------------------
    def certificate(self, identity: str) -> pki.CertificateKeeper:
        """`identity`'s certificate from the dev PKI (issued once per session, valid an hour)."""
        if identity not in self._certificates:
            self._certificates[identity] = pki.CertificateKeeper.static(pki.issue(self.vault, identity))
        return self._certificates[identity]

    def client(self, identity: str = "order-management", token: str | None = None) -> rpc.ClientSecurity:
        """A client presenting `identity`'s certificate and, if given, a user's access token on every call."""
        return rpc.ClientSecurity(self.certificate(identity)).with_bearer(token)

    def server(
        self,
        identity: str = "risk",
        on_refusal: rpc.RefusalSink | None = None,
    ) -> rpc.ServerSecurity:
        """A server's certificate and an authenticator as a service builds it (JWKS from Vault, Redis revocations);
        the JWKS is refetched on every unknown kid, since tests publish keys as they go."""
        revocations = tokens.RevocationList(self.redis_url)
        verifier = tokens.TokenVerifier(lambda: vault_module.read_jwks(self.vault), refetch_interval_s=0.0)
        return rpc.ServerSecurity(
            self.certificate(identity), rpc.Authenticator(verifier, revocations.is_revoked, on_refusal=on_refusal)
        )

    # -- users ---------------------------------------------------------------------------------------------------
    def publish_key(self) -> None:
        """Add this session's public key to the JWKS in Vault (keeping the keys already published there)."""
        try:
            document = vault_module.read_jwks(self.vault)
        except vault_module.SecretAccessError:
            document = {"keys": []}
        keys = [key for key in document["keys"] if key.get("kid") != self.kid]
        document = tokens.jwks(*keys, tokens.public_jwk(self.signing_key, self.kid))
        self.vault.secrets.kv.v2.create_or_update_secret(
            path=vault_module.JWKS_PATH,
            mount_point=vault_module.JWKS_MOUNT,
            secret={vault_module.JWKS_FIELD: json.dumps(document)},
        )

    def user_token(
        self,
        subject: str = "alice",
        roles: Iterable[str] = (VIEWER,),
        session_id: str | None = None,
        ttl_s: int = 600,
        now: float | None = None,
    ) -> str:
        """An access token for `subject` with `roles`, as the gateway issues them at login."""
        self.publish_key()
        sid = session_id or uuid.uuid4().hex
        return tokens.issue_access_token(self.signing_key, self.kid, subject, tuple(roles), sid, ttl_s, now=now)

    def revoke(self, session_id: str, ttl_s: int = 3600) -> None:
        """Revoke a session the way the gateway does at logout."""
        redis.Redis.from_url(self.redis_url).set(tokens.revoked_key(session_id), "1", ex=ttl_s)


@contextlib.contextmanager
def dev_identities() -> Iterator[TestIdentities]:
    """Outside pytest (benchmarks): an embedded stack of its own, its identities, and the process's gRPC defaults
    set from them (a `risk` server, an `order-management` client)."""
    with tempfile.TemporaryDirectory(prefix="trading-identities-") as folder:
        ports = StackPorts(kafka=free_port(), redis=free_port(), vault=free_port())
        stack = DevStack(Path(folder), ports, secure=False)
        try:
            endpoints = stack.up()
            identities = TestIdentities(endpoints.vault_addr, endpoints.vault_token(), endpoints.redis_url)
            rpc.configure(server=identities.server, client=identities.client)
            yield identities
        finally:
            rpc.reset_defaults()
            stack.down()
