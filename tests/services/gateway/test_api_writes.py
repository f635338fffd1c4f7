"""The REST writes against a real risk service: the gateway relays each to risk's gRPC RPC with the caller's token,
so risk's own checks decide (a risk officer, four eyes), and what risk then publishes comes back through the read
model to `GET /api/v1/risk`. The wrong role is refused before anything is called; bad bodies are 422 naming the
field; risk unreachable is 503 with Retry-After."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import hvac
import pytest
from risk_service.app import RiskApp
from risk_service.config import RiskSettings
from trading.risk.v1 import risk_pb2_grpc
from trading_platform import rpc, tokens
from trading_platform.settings import load_settings
from trading_platform.testing.identities import TestIdentities
from trading_platform.testing.plugin import FAST_GROUP_OPTIONS
from trading_platform.vault import read_secret

from tests.services.gateway.readmodel_helpers import Api, api_gateway, wait_until

pytestmark = pytest.mark.integration


@asynccontextmanager
async def risk_service(
    bootstrap: str, namespace: str, identities: TestIdentities, vault: hvac.Client, gateway_vault_path: str, redis: str
) -> AsyncIterator[rpc.RpcServer]:
    """Risk as it runs, behind an RpcServer that verifies callers as every service does (mTLS certificate, the
    token against the JWKS this test's gateway publishes in Vault, revocations in Redis, the access policy)."""
    settings = load_settings(
        RiskSettings,
        service_name="risk",
        kafka={"bootstrap_servers": bootstrap, "namespace": namespace, **FAST_GROUP_OPTIONS},
        risk={"execution_address": "127.0.0.1:1", "account_retry_s": 0.2},
    )
    app = RiskApp(settings)
    await app.start()

    def jwks() -> dict[str, Any]:
        return json.loads(read_secret(vault, f"{gateway_vault_path}/jwks", "jwks", "secret"))  # type: ignore[no-any-return]

    verifier = tokens.TokenVerifier(jwks, refetch_interval_s=0.0)
    security = rpc.ServerSecurity(
        identities.certificate("risk"),
        rpc.Authenticator(verifier, tokens.RevocationList(redis).is_revoked),
    )
    server = rpc.RpcServer(
        [rpc.Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, app, "trading.risk.v1.RiskService")],
        security=security,
    )
    await server.start()
    await server.set_serving(True)
    try:
        yield server
    finally:
        await server.stop(0)
        await app.stop()


@pytest.fixture
async def desk(
    make_settings: Any,
    vault_root: hvac.Client,
    kafka_bootstrap: str,
    topic_namespace: str,
    grpc_identities: TestIdentities,
    redis_url: str,
) -> AsyncIterator[Api]:
    vault_path = f"trading/gateway-api-{topic_namespace.strip('.')}"
    # The gateway first (its JWKS is in Vault before risk verifies a token), pointed at a risk started next.
    async with (
        risk_service(kafka_bootstrap, topic_namespace, grpc_identities, vault_root, vault_path, redis_url) as server,
        api_gateway(
            make_settings,
            vault_root,
            kafka_bootstrap,
            topic_namespace,
            vault_path=vault_path,
            risk_address=server.address,
        ) as api,
    ):
        yield api


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_a_risk_officers_halt_is_read_back_and_resuming_takes_a_second_officer(desk: Api) -> None:
    http = desk.client.http
    viewer = await desk.user("vic", ["viewer"])
    trader = await desk.user("tom", ["trader"])
    rita = await desk.user("rita", ["risk-officer"])
    rob = await desk.user("rob", ["risk-officer"])

    for token in (viewer, trader):
        refused = await http.post("/api/v1/risk/halt", json={"reason": "not mine"}, headers=bearer(token))
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert desk.feed.model.trading_state is None  # nothing reached risk: it published no state

    bad = await http.post("/api/v1/risk/halt", json={"reason": "x", "cancel": True}, headers=bearer(rita))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cancel"
    missing = await http.post("/api/v1/risk/halt", json={}, headers=bearer(rita))
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "reason"

    halted = await http.post("/api/v1/risk/halt", json={"reason": "drill"}, headers=bearer(rita))
    assert halted.status_code == 200, halted.text
    assert halted.json()["state"] == "HALTED" and halted.json()["outcome"]["applied"] is True

    async def risk_reads(state: str) -> bool:
        body = (await http.get("/api/v1/risk", headers=bearer(viewer))).json()
        return bool(body["trading_state"] == state)

    await wait_until(lambda: risk_reads("HALTED"), what="the halt read back through GET /api/v1/risk")
    risk = (await http.get("/api/v1/risk", headers=bearer(viewer))).json()
    assert risk["actor"] == "user:rita" and risk["reason"] == "drill"

    resumed = await http.post("/api/v1/risk/resume", json={"reason": "drill over"}, headers=bearer(rita))
    assert resumed.status_code == 202, resumed.text
    outcome = resumed.json()["outcome"]
    assert outcome["applied"] is False and outcome["change_id"]
    pending = (await http.get("/api/v1/risk/changes", headers=bearer(viewer))).json()["items"]
    assert [(c["change_id"], c["content_hash"], c["requested_by"]) for c in pending] == [
        (outcome["change_id"], outcome["content_hash"], "user:rita")
    ]
    approve = f"/api/v1/risk/changes/{outcome['change_id']}/approve"
    body = {"content_hash": outcome["content_hash"], "reason": "checked"}
    own = await http.post(approve, json=body, headers=bearer(rita))
    assert own.status_code == 403, own.text  # never one's own change
    assert (await http.post(approve, json=body, headers=bearer(viewer))).status_code == 403
    wrong = await http.post(approve, json={"content_hash": "0" * 64}, headers=bearer(rob))
    assert wrong.status_code == 409, wrong.text  # bound to the change reviewed: FAILED_PRECONDITION
    approved = await http.post(approve, json=body, headers=bearer(rob))
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "ACTIVE"
    await wait_until(lambda: risk_reads("ACTIVE"), what="the approved lift read back")


async def test_limits_tighten_at_once_and_loosen_only_with_a_second_officer(desk: Api) -> None:
    http = desk.client.http
    rita = await desk.user("rita", ["risk-officer"])
    tighter = await http.put(
        "/api/v1/risk/limits", json={"reason": "calm down", "max_order_quantity": "5"}, headers=bearer(rita)
    )
    assert tighter.status_code == 200, tighter.text
    assert tighter.json()["limits"]["max_order_quantity"] == "5" and tighter.json()["outcome"]["applied"] is True

    async def limit_reads(value: str) -> bool:
        rows = (await http.get("/api/v1/risk", headers=bearer(rita))).json()["limits"]
        return any(r["name"] == "max_order_quantity" and r["limit"] == value for r in rows)

    await wait_until(lambda: limit_reads("5"), what="the tighter limit read back")
    looser = await http.put(
        "/api/v1/risk/limits", json={"reason": "busy day", "max_order_quantity": "50"}, headers=bearer(rita)
    )
    assert looser.status_code == 202 and looser.json()["outcome"]["change_id"]
    assert looser.json()["limits"]["max_order_quantity"] == "5"  # still in force until approved
    for body, field in (
        ({"reason": "x", "max_order_quantity": "-1"}, "max_order_quantity"),
        ({"reason": "x", "max_order_quantity": 5.5}, "max_order_quantity"),
        ({"reason": "x", "max_orders": 3}, "max_orders"),
    ):
        refused = await http.put("/api/v1/risk/limits", json=body, headers=bearer(rita))
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text


async def test_an_unreachable_service_is_503_with_retry_after_and_changes_nothing(
    make_settings: Any, vault_root: hvac.Client, kafka_bootstrap: str, topic_namespace: str
) -> None:
    async with api_gateway(
        make_settings, vault_root, kafka_bootstrap, topic_namespace, risk_address="127.0.0.1:1", grpc_timeout_s=2
    ) as api:
        rita = await api.user("rita", ["risk-officer"])
        response = await api.client.http.post("/api/v1/risk/halt", json={"reason": "drill"}, headers=bearer(rita))
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.headers["content-type"] == "application/problem+json"
        trader = await api.user("tom", ["trader"])
        order = {"symbol": "AAPL", "side": "BUY", "quantity": "1"}
        assert (await api.client.http.post("/api/v1/orders", json=order, headers=bearer(rita))).status_code == 403
        bad = await api.client.http.post("/api/v1/orders", json={**order, "quantity": "1e3"}, headers=bearer(trader))
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "quantity"
