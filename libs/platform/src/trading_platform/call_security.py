"""A service's gRPC security, built from its settings: its certificate from Vault PKI (renewed), the gateway's JWKS
from Vault, the session revocation list in Redis, and its refusals published to security.refusals.v1.

The runner (trading_platform.service) calls `ServiceCallSecurity.start` before serving and makes the result the
process default (`rpc.configure`), so the service's server and its own client channels use it with no code of
their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from trading.security.v1 import security_pb2

from trading_platform import pki, rpc, tokens
from trading_platform import vault as vault_module
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher
from trading_platform.settings import ConfigError, ServiceSettings, vault_client

T = TypeVar("T")

REFUSALS_TOPIC = "security.refusals.v1"


def refusal_message(service: str, refusal: rpc.Refusal) -> security_pb2.AccessRefused:
    return security_pb2.AccessRefused(
        envelope=new_envelope(service),
        service=service,
        method=refusal.method,
        code=refusal.code.name,
        reason=refusal.reason,
        actor=refusal.actor,
        certificate=refusal.certificate,
        peer=refusal.peer,
    )


class RefusalPublisher:
    """Publishes each refusal to security.refusals.v1 (keyed by the refusing service)."""

    def __init__(self, publisher: Publisher, service: str) -> None:
        self.publisher = publisher
        self.service = service

    async def __call__(self, refusal: rpc.Refusal) -> None:
        await self.publisher.publish(REFUSALS_TOPIC, refusal_message(self.service, refusal), self.service)


class _Vault:
    """The service's Vault client, logged in again when a call is refused (its token reached its max TTL)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.client = vault_client(settings.vault)

    def call(self, operation: Callable[[Any], T]) -> T:
        try:
            return operation(self.client)
        except (pki.PkiError, vault_module.SecretAccessError) as refused:
            if "permission denied" not in str(refused):
                raise
            try:
                self.client = vault_client(self.settings.vault)
            except ConfigError as error:  # a SystemExit: never let it escape a background renewal
                raise pki.PkiError(f"Vault login failed: {error.code}") from None
            return operation(self.client)


@dataclass
class ServiceCallSecurity:
    server: rpc.ServerSecurity
    client: rpc.ClientSecurity
    revocations: tokens.RevocationList
    refusals: Publisher
    renewer: vault_module.TokenRenewer

    @classmethod
    async def start(cls, settings: ServiceSettings, on_failure: Callable[[str], None]) -> ServiceCallSecurity:
        """Log in to Vault, issue the service's certificate (pki.PkiError if it cannot be) and keep it renewed;
        `on_failure(reason)` is called if it expires unrenewed."""
        vault = _Vault(settings)
        renewer = vault_module.TokenRenewer(vault.client).start()
        alt_names = ("localhost", *settings.grpc.tls_alt_names)
        keeper = pki.CertificateKeeper(
            lambda: vault.call(lambda client: pki.issue(client, settings.service_name, alt_names=alt_names)),
            on_failure=on_failure,
        )
        try:
            await keeper.start()
        except Exception:
            renewer.stop()
            raise
        refusals = Publisher(settings.kafka.connection(), settings.service_name, namespace=settings.kafka.namespace)
        await refusals.start()
        revocations = tokens.RevocationList(settings.redis.url)
        authenticator = rpc.Authenticator(
            tokens.TokenVerifier(lambda: vault.call(vault_module.read_jwks)),
            revocations.is_revoked,
            on_refusal=RefusalPublisher(refusals, settings.service_name),
        )
        server = rpc.ServerSecurity(keeper, authenticator)
        return cls(server, rpc.ClientSecurity(keeper), revocations, refusals, renewer)

    async def stop(self) -> None:
        await self.server.authenticator.drain()
        await self.server.certificates.stop()
        await self.refusals.stop()
        await self.revocations.close()
        self.renewer.stop()
