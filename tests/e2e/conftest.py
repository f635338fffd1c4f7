"""Every end-to-end test that runs a `platform` calls its services as the operator on duty: the `tradectl` client
certificate from the platform's own PKI and the access token of a user with the viewer, trader and risk-officer
roles, signed by a key published to the platform's Vault where the gateway publishes its JWKS. The `tradectl`
command line the tests run finds the same certificate (TRADECTL_RUN_DIR) and token (its credentials file)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tradectl.stack import Platform
from trading_platform import rpc
from trading_platform.identity import RISK_OFFICER, TRADER, VIEWER
from trading_platform.testing.identities import TestIdentities

OPERATOR_ROLES = (VIEWER, TRADER, RISK_OFFICER)
TOKEN_TTL_S = 3600


_ON_DUTY: dict[Path, tuple[TestIdentities, str]] = {}


def operator_on_duty(platform: Platform) -> tuple[TestIdentities, str]:
    """One operator identity (one signing key, one token) per platform: a key published for each test would reach a
    service the moment after it last refetched the JWKS (at most every 5 s), which then calls it unknown."""
    if platform.run_dir not in _ON_DUTY:
        endpoints = platform.stack.endpoints()
        identities = TestIdentities(endpoints.vault_addr, endpoints.vault_token(), endpoints.redis_url)
        _ON_DUTY[platform.run_dir] = (
            identities,
            identities.user_token("e2e-operator", OPERATOR_ROLES, ttl_s=TOKEN_TTL_S),
        )
    return _ON_DUTY[platform.run_dir]


@pytest.fixture(autouse=True)
def _as_the_operator_on_duty(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    if "platform" not in request.fixturenames:
        yield
        return
    platform: Platform = request.getfixturevalue("platform")
    identities, token = operator_on_duty(platform)
    rpc.configure(client=identities.client("tradectl", token=token))
    # the command line: the platform's run folder (its PKI) and a logged-in user's stored credentials
    monkeypatch.setenv("TRADECTL_RUN_DIR", str(platform.run_dir))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    credentials = tmp_path / "config" / "tradectl" / "credentials.json"
    credentials.parent.mkdir(parents=True)
    credentials.write_text(
        json.dumps(
            {
                "gateway_url": "http://127.0.0.1:1",
                "username": "e2e-operator",
                "roles": list(OPERATOR_ROLES),
                "session_id": "",
                "access_token": token,
                "expires_at": time.time() + TOKEN_TTL_S,
                "refresh_token": None,
            }
        )
    )
    credentials.chmod(0o600)
    yield
