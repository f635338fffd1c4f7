"""gRPC certificates from OpenBao's PKI engine: each identity issues only its own name, certificates are renewed
before they expire and a server keeps serving across the renewal, and a certificate that cannot be renewed fails
closed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import hvac
import pytest
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform import pki
from trading_platform.devstack import PKI_IDENTITIES
from trading_platform.rpc import ClientSecurity, RenewingChannel, RpcServer, ServerSecurity, Servicer, channel
from trading_platform.testing.identities import TestIdentities
from trading_platform.testing.plugin import VaultEndpoint

pytestmark = pytest.mark.integration


class Risk(risk_pb2_grpc.RiskServiceServicer):
    async def CheckOrder(self, request, context):  # type: ignore[no-untyped-def]
        return risk_pb2.RiskDecision(client_order_id=request.client_order_id, approved=True)


def root(vault_endpoint: VaultEndpoint) -> hvac.Client:
    return hvac.Client(url=vault_endpoint.address, token=vault_endpoint.token)


def test_a_certificate_names_its_identity_and_nothing_else(
    vault_endpoint: VaultEndpoint, grpc_identities: TestIdentities
) -> None:
    client = root(vault_endpoint)
    pki.ensure_pki(client, PKI_IDENTITIES)  # idempotent: the CAs are kept, the roles rewritten
    material = pki.issue(client, "risk")
    assert material.identity == "risk" and material.not_after - material.not_before <= 3600 + 60
    for stranger in ("order-management", "risk.evil.example"):
        with pytest.raises(pki.PkiError, match="pki_int/issue/risk"):
            pki.issue(client, "risk", alt_names=[stranger])
    with pytest.raises(pki.PkiError, match="order-management"):
        pki.issue(client, "order-management-2")  # no role of that name


def test_a_service_policy_issues_only_its_own_certificate(vault_endpoint: VaultEndpoint) -> None:
    """The dev stack's per-service Vault policy: `risk` may issue risk's certificate, not order-management's."""
    grpc_root = root(vault_endpoint)
    pki.ensure_pki(grpc_root, PKI_IDENTITIES)
    token = grpc_root.auth.token.create(policies=["trading-risk"], ttl="5m")["auth"]["client_token"]
    as_risk = hvac.Client(url=vault_endpoint.address, token=token)
    assert pki.issue(as_risk, "risk").identity == "risk"
    with pytest.raises(pki.PkiError, match="permission denied"):
        pki.issue(as_risk, "order-management")


async def test_certificates_are_renewed_and_the_server_serves_across_the_renewal(
    vault_endpoint: VaultEndpoint, grpc_identities: TestIdentities
) -> None:
    client = root(vault_endpoint)
    renewed: list[pki.TlsMaterial] = []
    keeper = pki.CertificateKeeper(lambda: pki.issue(client, "risk", ttl="6s"))
    keeper.on_renew(renewed.append)
    await keeper.start()
    first = keeper.current()
    authenticator = grpc_identities.server("risk").authenticator
    server = RpcServer(
        [Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, Risk(), "trading.risk.v1.RiskService")],
        security=ServerSecurity(keeper, authenticator),
    )
    await server.start()
    as_oms = grpc_identities.client("order-management")
    client_keeper = pki.CertificateKeeper(lambda: pki.issue(client, "order-management", ttl="6s"))
    await client_keeper.start()
    long_lived = channel(server.address, security=ClientSecurity(client_keeper))
    assert isinstance(long_lived, RenewingChannel)
    stub = risk_pb2_grpc.RiskServiceStub(long_lived)  # made once, as order-management makes its stubs
    try:
        assert (await stub.CheckOrder(risk_pb2.CheckOrderRequest(client_order_id="before"))).approved
        connection = long_lived.current()
        deadline = time.monotonic() + 20
        while time.time() < first.not_after + 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert keeper.renewals >= 1 and renewed and renewed[0].certificate != first.certificate
        assert keeper.current().not_after > first.not_after and client_keeper.renewals >= 1
        # the first certificates have expired: a new connection only succeeds on the renewed ones
        async with channel(server.address, security=as_oms) as fresh:
            decision = await risk_pb2_grpc.RiskServiceStub(fresh).CheckOrder(
                risk_pb2.CheckOrderRequest(client_order_id="after-renewal")
            )
        assert decision.approved
        assert (await stub.CheckOrder(risk_pb2.CheckOrderRequest(client_order_id="after"))).approved
        assert long_lived.current() is not connection  # the old stub now calls over the renewed certificate
    finally:
        await long_lived.close()
        await server.stop(0)
        await keeper.stop()
        await client_keeper.stop()


async def test_a_certificate_that_cannot_be_renewed_fails_closed(vault_endpoint: VaultEndpoint) -> None:
    grpc_root = root(vault_endpoint)
    token = grpc_root.auth.token.create(policies=["trading-risk"], ttl="5m")["auth"]["client_token"]
    as_risk = hvac.Client(url=vault_endpoint.address, token=token)
    failures: list[str] = []
    keeper = pki.CertificateKeeper(lambda: pki.issue(as_risk, "risk", ttl="4s"), on_failure=failures.append, retry_s=1)
    await keeper.start()
    expires = keeper.current().not_after
    grpc_root.auth.token.revoke(token)  # Vault no longer answers this service
    try:
        deadline = time.monotonic() + 20
        while not failures and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert failures and "could not be renewed" in failures[0] and keeper.failed == failures[0]
        assert time.time() >= expires - 1.5  # it kept trying until the certificate was about to expire
    finally:
        await keeper.stop()


async def test_a_client_with_an_expired_certificate_cannot_connect(
    vault_endpoint: VaultEndpoint, grpc_identities: TestIdentities
) -> None:
    short = pki.issue(root(vault_endpoint), "order-management", ttl="2s")
    server = RpcServer(
        [Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, Risk(), "trading.risk.v1.RiskService")],
        security=grpc_identities.server("risk"),
    )
    await server.start()
    try:
        await asyncio.sleep(max(0.0, short.not_after - time.time() + 1))
        expired = ClientSecurity(pki.CertificateKeeper.static(short))
        async with channel(server.address, security=expired) as stale:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await risk_pb2_grpc.RiskServiceStub(stale).CheckOrder(risk_pb2.CheckOrderRequest(client_order_id="x"))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)


def test_a_service_logs_in_to_vault_again_when_its_token_is_refused(
    vault_endpoint: VaultEndpoint, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A Vault token past its max TTL is refused: the service logs in again (here: reads its token file again)
    rather than letting its certificate lapse."""
    from trading_platform.call_security import _Vault
    from trading_platform.settings import ServiceSettings, load_settings

    grpc_root = root(vault_endpoint)
    first = grpc_root.auth.token.create(policies=["trading-risk"], ttl="5m")["auth"]["client_token"]
    token_file = tmp_path / "token"
    token_file.write_text(first)
    settings = load_settings(
        ServiceSettings,
        service_name="risk",
        kafka={"bootstrap_servers": kafka_bootstrap},
        vault={"addr": vault_endpoint.address, "token_file": str(token_file)},
    )
    vault = _Vault(settings)
    assert vault.call(lambda client: pki.issue(client, "risk")).identity == "risk"
    grpc_root.auth.token.revoke(first)
    token_file.write_text(grpc_root.auth.token.create(policies=["trading-risk"], ttl="5m")["auth"]["client_token"])
    assert vault.call(lambda client: pki.issue(client, "risk")).identity == "risk"
    token_file.write_text("not-a-token")
    grpc_root.auth.token.revoke(vault.client.token)
    with pytest.raises(pki.PkiError, match="Vault login failed"):
        vault.call(lambda client: pki.issue(client, "risk"))
