"""The identity contract end to end: a token the gateway issues at login (TOTP and all) is accepted by a platform gRPC
server, which verifies it against the JWKS the gateway published to Vault and runs the handler as that user; once
the user logs out, the same token is refused at once."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
import pyotp
import pytest
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.identity import RISK_OFFICER, current_identity
from trading_platform.messaging import KafkaConnection, ensure_topics
from trading_platform.rpc import RpcServer, Servicer, channel
from trading_platform.settings import load_settings
from trading_platform.testing.identities import TestIdentities
from trading_platform.testing.plugin import VaultEndpoint

gateway_app = pytest.importorskip("gateway_service.app")
from gateway_service.bootstrap import write_secret  # noqa: E402
from gateway_service.config import GatewaySettings  # noqa: E402

from tests.services.gateway.readmodel_helpers import READ_TOPICS  # noqa: E402

pytestmark = pytest.mark.integration
PASSWORD = "a passphrase for a throwaway test account"  # pragma: allowlist secret


class Risk(risk_pb2_grpc.RiskServiceServicer):
    def __init__(self) -> None:
        self.ran_as: list[str] = []

    async def SetTradingState(self, request: Any, context: Any) -> risk_pb2.TradingStateResponse:
        caller = current_identity()
        self.ran_as.append(f"{caller.actor} via {caller.via}" if caller else "")
        return risk_pb2.TradingStateResponse(state=request.state)


async def login(http: httpx.AsyncClient, username: str, totp_secret: str) -> dict[str, Any]:
    code = pyotp.TOTP(totp_secret).now()
    response = await http.post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORD, "totp_code": code}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_gateway_token_calls_grpc_as_its_user_until_logout(
    kafka_connection: KafkaConnection,
    redis_url: str,
    vault_endpoint: VaultEndpoint,
    topic_namespace: str,
    grpc_identities: TestIdentities,
) -> None:
    settings = load_settings(
        GatewaySettings,
        kafka={"bootstrap_servers": kafka_connection.bootstrap_servers, "namespace": topic_namespace},
        redis={"url": redis_url},
        vault={"addr": vault_endpoint.address, "token": vault_endpoint.token},
        # the real JWKS path every service reads; users in a Redis prefix of this test's own
        gateway={
            "redis_prefix": f"{topic_namespace}gateway:",
            "port": 0,
            "argon2_time_cost": 1,
            "argon2_memory_kib": 8192,
            "argon2_parallelism": 1,
        },
    )
    # the topics its read model reads, as the platform's start-up creates them
    await ensure_topics(settings.kafka.bootstrap_servers, READ_TOPICS, namespace=settings.kafka.namespace)
    gateway = gateway_app.GatewayApp(settings)
    await gateway.start()
    risk = Risk()
    server = RpcServer(
        [Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, risk, "trading.risk.v1.RiskService")],
        security=grpc_identities.server("risk"),
    )
    await server.start()
    transport = httpx.ASGITransport(app=gateway_app.create_app(gateway.engine), client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        try:
            config = settings.gateway
            secret = write_secret(grpc_identities.vault, config.vault_mount, config.vault_path)  # the operator's part
            admin = "admin-" + uuid.uuid4().hex[:6]
            enrolled = await http.post(
                "/api/v1/auth/bootstrap", json={"secret": secret, "username": admin, "password": PASSWORD}
            )
            assert enrolled.status_code == 201, enrolled.text
            admin_token = (await login(http, admin, enrolled.json()["totp_secret"]))["access_token"]
            created = await http.post(
                "/api/v1/users",
                json={"username": "rita", "roles": [RISK_OFFICER], "password": PASSWORD},
                headers={"authorization": f"Bearer {admin_token}"},
            )
            assert created.status_code == 201, created.text
            session = await login(http, "rita", created.json()["totp_secret"])

            as_rita = grpc_identities.client("gateway", token=session["access_token"])
            request = risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_HALTED, reason="drill")
            async with channel(server.address, security=as_rita) as open_channel:
                stub = risk_pb2_grpc.RiskServiceStub(open_channel)
                assert (await stub.SetTradingState(request)).state == risk_pb2.TRADING_STATE_HALTED
                assert risk.ran_as == ["user:rita via gateway"]

                out = await http.post(
                    "/api/v1/auth/logout",
                    json={"refresh_token": session["refresh_token"]},
                    headers={"authorization": f"Bearer {session['access_token']}"},
                )
                assert out.status_code == 200, out.text
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.SetTradingState(request)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert refused.value.details() == "session revoked"
            assert len(risk.ran_as) == 1
        finally:
            await server.stop(0)
            await gateway.stop()
