"""`tradectl risk pending|approve|resume` against the risk service over authenticated gRPC: the tradectl certificate
from the test Vault's PKI, each risk officer's own access token (the interceptor sets the identity from it)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from risk_service.app import RiskApp
from risk_service.config import RiskSettings
from trading.risk.v1 import risk_pb2 as R
from trading.risk.v1 import risk_pb2_grpc
from trading_platform.identity import RISK_OFFICER
from trading_platform.rpc import RpcServer, Servicer
from trading_platform.settings import load_settings
from trading_platform.testing.identities import TestIdentities

pytestmark = pytest.mark.integration
TRADECTL = str(Path(sys.executable).parent / "tradectl")


def as_user(home: Path, identities: TestIdentities, name: str) -> dict[str, str]:
    """The environment of tradectl run as `name`, a risk officer: its certificate's PEM files and a logged-in
    user's credentials."""
    tls = home / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    material = identities.certificate("tradectl").current()
    (tls / "tls.crt").write_bytes(material.certificate)
    (tls / "tls.key").write_bytes(material.private_key)
    (tls / "ca.crt").write_bytes(material.ca_chain)
    token = identities.user_token(name, (RISK_OFFICER,), ttl_s=600)
    config = home / name
    (config / "tradectl").mkdir(parents=True, exist_ok=True)
    credentials = config / "tradectl" / "credentials.json"
    credentials.write_text(
        json.dumps(
            {
                "gateway_url": "http://127.0.0.1:1",
                "username": name,
                "roles": [RISK_OFFICER],
                "session_id": "",
                "access_token": token,
                "expires_at": time.time() + 600,
                "refresh_token": None,
            }
        )
    )
    credentials.chmod(0o600)
    return {**os.environ, "TRADECTL_TLS_DIR": str(tls), "XDG_CONFIG_HOME": str(config)}


async def run_tradectl(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        TRADECTL, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def tradectl_json(env: dict[str, str], *args: str) -> Any:
    code, out, err = await run_tradectl(env, *args, "--json")
    assert code == 0, err
    return json.loads(out)


async def test_a_second_officer_lifts_a_halt_with_tradectl(
    kafka_bootstrap: str,
    topic_namespace: str,
    grpc_identities: TestIdentities,
    tmp_path: Path,
) -> None:
    grpc_identities.publish_key()
    settings = load_settings(
        RiskSettings,
        service_name="risk",
        kafka={"bootstrap_servers": kafka_bootstrap, "namespace": topic_namespace},
        risk={"execution_address": "127.0.0.1:1"},
    )
    app = RiskApp(settings)
    await app.start()
    server = RpcServer(
        [Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, app, "trading.risk.v1.RiskService")],
        security=grpc_identities.server("risk"),
    )
    await server.start()
    try:
        address = ("--risk", server.address)
        alice = as_user(tmp_path, grpc_identities, "alice")
        halted = await tradectl_json(alice, "risk", "halt", "--reason", "incident", *address)
        assert halted["state"] == "TRADING_STATE_HALTED" and halted["outcome"]["applied"]
        lift = await tradectl_json(alice, "risk", "resume", "--reason", "incident over", *address)
        assert lift["state"] == "TRADING_STATE_HALTED" and not lift["outcome"].get("applied")
        change_id = lift["outcome"]["change_id"]

        [waiting] = await tradectl_json(alice, "risk", "pending", *address)
        assert waiting["change_id"] == change_id and waiting["requested_by"] == "user:alice"
        code, _, err = await run_tradectl(alice, "risk", "approve", change_id, *address)
        assert code == 1 and "PERMISSION_DENIED" in err  # self-approval
        assert app.engine.trading_state == R.TRADING_STATE_HALTED

        bob = as_user(tmp_path, grpc_identities, "bob")
        approved = await tradectl_json(bob, "risk", "approve", change_id, "--reason", "checked", *address)
        assert approved["state"] == "TRADING_STATE_ACTIVE"
        assert app.engine.trading_state == R.TRADING_STATE_ACTIVE
        assert await tradectl_json(bob, "risk", "pending", *address) == []
    finally:
        await server.stop(0)
        await app.stop()
