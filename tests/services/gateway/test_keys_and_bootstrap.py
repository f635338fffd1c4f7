"""The signing keys (Vault, rotation, JWKS) and the one-time bootstrap of the first admin; and the gateway served by
uvicorn over a real socket."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import hvac
import jwt
import pytest
from gateway_service.app import HttpServer, create_app
from gateway_service.bootstrap import has_secret, write_secret
from trading_platform.tokens import CLOCK_SKEW_S, TokenVerifier
from trading_platform.vault import read_secret

from tests.services.gateway.helpers import PASSWORD, Running, bearer, start_gateway

pytestmark = pytest.mark.integration


def vault_jwks(running: Running) -> dict[str, Any]:
    raw = read_secret(running.vault, f"{running.settings.gateway.vault_path}/jwks", "jwks")
    document: dict[str, Any] = json.loads(raw)
    return document


def kids(document: dict[str, Any]) -> list[str]:
    return [key["kid"] for key in document["keys"]]


async def test_rotation_keeps_old_tokens_verifiable_until_they_expire(running: Running) -> None:
    client = running.client
    old_token = running.admin_token
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    assert kids(vault_jwks(running)) == [old_kid]
    rotated = await client.http.post("/api/v1/signing-key/rotate", headers=bearer(old_token))
    assert rotated.status_code == 200 and rotated.json()["previous_kid"] == old_kid
    new_kid = rotated.json()["kid"]
    served = (await client.http.get("/.well-known/jwks.json")).json()
    assert kids(served) == kids(vault_jwks(running)) == [new_kid, old_kid]
    # Only public halves are published: no private scalar `d` anywhere.
    assert all(set(key) == {"kty", "crv", "x", "kid", "alg", "use"} for key in served["keys"])
    # Tokens signed before the rotation still verify, at the gateway and for a service reading Vault's copy.
    assert (await client.http.get("/api/v1/auth/me", headers=bearer(old_token))).status_code == 200
    verifier = TokenVerifier(lambda: vault_jwks(running))
    assert verifier.verify(old_token).subject == running.admin.username
    new_token = await client.token(running.admin)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    # Once every token the old key signed has expired, the old key leaves the JWKS (here: the clock moved on).
    keys = running.engine.keys
    retired_at = next(key.retired_at for key in keys.keys if key.kid == old_kid)
    assert retired_at is not None
    ttl = running.settings.gateway.access_token_ttl_s
    await asyncio.to_thread(keys.reload, retired_at + ttl - 1)
    assert kids(vault_jwks(running)) == [new_kid, old_kid]
    await asyncio.to_thread(keys.reload, retired_at + ttl + CLOCK_SKEW_S + 1)
    assert kids(vault_jwks(running)) == [new_kid]
    assert kids((await client.http.get("/.well-known/jwks.json")).json()) == [new_kid]
    # A key out of the JWKS is refused at once, even for a token whose own exp has not come.
    dropped = await client.http.get("/api/v1/auth/me", headers=bearer(old_token))
    assert dropped.status_code == 401 and dropped.json()["detail"] == "token signed by an unknown key"
    events = [e for e in await running.events() if e.WhichOneof("event") == "signing_key_rotated"]
    assert [(e.actor, e.signing_key_rotated.previous_kid) for e in events] == [
        (f"user:{running.admin.username}", old_kid)
    ]


async def test_a_second_instance_signs_with_the_same_keys_and_a_due_key_rotates_once(
    running: Running, make_settings: Any
) -> None:
    settings = make_settings(vault_path=running.settings.gateway.vault_path)
    other, other_client = await start_gateway(settings)
    try:
        assert other.engine is not None
        assert other.engine.keys.current.kid == running.engine.keys.current.kid
        # Both instances find the key due at once: check-and-set in Vault lets one rotation through.
        later = time.time() + running.settings.gateway.key_rotation_s + 1
        first, second = await asyncio.gather(
            asyncio.to_thread(running.engine.keys.rotate_if_due, later),
            asyncio.to_thread(other.engine.keys.rotate_if_due, later),
        )
        assert first is not None and second is not None
        assert other.engine.keys.current.kid == running.engine.keys.current.kid
        assert len(kids(vault_jwks(running))) == 2
    finally:
        await other_client.aclose()
        await other.stop()


async def test_the_bootstrap_secret_creates_one_admin_once(make_settings: Any, vault_root: hvac.Client) -> None:
    settings = make_settings()
    gateway, client = await start_gateway(settings)
    config = settings.gateway
    try:
        none_yet = await client.http.post(
            "/api/v1/auth/bootstrap", json={"secret": "guess", "username": "root", "password": PASSWORD}
        )
        assert none_yet.status_code == 401
        secret = write_secret(vault_root, config.vault_mount, config.vault_path)
        wrong = await client.http.post(
            "/api/v1/auth/bootstrap", json={"secret": secret[:-1] + "x", "username": "root", "password": PASSWORD}
        )
        assert wrong.status_code == 401
        # Two racing requests with the right secret: one admin.
        racing = await asyncio.gather(
            *(
                client.http.post(
                    "/api/v1/auth/bootstrap", json={"secret": secret, "username": f"root{i}", "password": PASSWORD}
                )
                for i in range(2)
            )
        )
        assert sorted(r.status_code for r in racing) in ([201, 401], [201, 410])
        made = next(r for r in racing if r.status_code == 201).json()
        assert made["user"]["roles"] == ["admin"] and made["totp_uri"].startswith("otpauth://totp/")
        assert made["password"] is None  # the admin chose it; nothing to hand over
        assert not has_secret(vault_root, config.vault_mount, config.vault_path)  # consumed in Vault
        again = await client.http.post(
            "/api/v1/auth/bootstrap", json={"secret": secret, "username": "root9", "password": PASSWORD}
        )
        assert again.status_code == 401
        # A new secret written later cannot make a second admin either: the bootstrap is spent.
        later = write_secret(vault_root, config.vault_mount, config.vault_path)
        spent = await client.http.post(
            "/api/v1/auth/bootstrap", json={"secret": later, "username": "root8", "password": PASSWORD}
        )
        assert spent.status_code == 410
        users = [u for u in await gateway.engine.users.all()] if gateway.engine else []
        assert [u.username for u in users] == [made["user"]["username"]]
        events = [e for e in await _events(settings) if e.WhichOneof("event") == "admin_bootstrapped"]
        assert [e.actor for e in events] == [f"user:{made['user']['username']}"]
    finally:
        await client.aclose()
        await gateway.stop()


async def _events(settings: Any) -> list[Any]:
    from trading_platform.messaging import replay

    kafka = settings.kafka
    return [m.value async for m in replay(kafka.bootstrap_servers, "identity.events.v1", namespace=kafka.namespace)]


async def test_served_by_uvicorn_over_a_socket(running: Running) -> None:
    server = HttpServer(create_app(running.engine), "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            jwks = await http.get("/.well-known/jwks.json")
            assert jwks.status_code == 200 and kids(jwks.json()) == [running.engine.keys.current.kid]
            body = {
                "username": running.admin.username,
                "password": PASSWORD,
                "totp_code": running.client.fresh_code(running.admin),
            }
            login = await http.post("/api/v1/auth/login", json=body)
            assert login.status_code == 200
            users = await http.get("/api/v1/users", headers=bearer(login.json()["access_token"]))
            assert [u["username"] for u in users.json()] == [running.admin.username]
            assert login.headers["cache-control"] == "no-store" and login.headers["x-content-type-options"] == "nosniff"
            # A forwarded address from a proxy nobody named is not believed (it would dodge the address lockout).
            spoofed = {"x-forwarded-for": "198.51.100.9"}
            unknown = await http.post("/api/v1/auth/login", json={**body, "username": "nobody"}, headers=spoofed)
            assert unknown.status_code == 401 and unknown.headers["content-type"] == "application/problem+json"
            events = [e for e in await running.events() if e.WhichOneof("event") == "login_failed"]
            assert events[-1].client_address == "127.0.0.1" and events[-1].actor == "anonymous"
    finally:
        await server.stop()
    behind_proxy = HttpServer(create_app(running.engine), "127.0.0.1", 0, trusted_proxies="127.0.0.1")
    await behind_proxy.start()
    try:
        async with httpx.AsyncClient(base_url=behind_proxy.url) as http:
            await http.post("/api/v1/auth/login", json={**body, "username": "nobody"}, headers=spoofed)
        events = [e for e in await running.events() if e.WhichOneof("event") == "login_failed"]
        assert events[-1].client_address == "198.51.100.9"
    finally:
        await behind_proxy.stop()
