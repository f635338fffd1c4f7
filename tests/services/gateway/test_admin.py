"""Admin routes and API keys as an attacker probes them: a viewer (or nobody) calling admin routes, expired and
revoked keys, keys wider than their owner, the last admin, bad input; every change on the bus with its actor."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi.routing import APIRoute
from trading_platform.access_policy import default_policy
from trading_platform.identity import ADMIN

from tests.services.gateway.helpers import PASSWORD, Running, bearer

pytestmark = pytest.mark.integration
EXAMPLE_PATH_VALUES = {
    "username": "alice",
    "role": "trader",
    "session_id": "0" * 32,
    "key_id": "0" * 16,
}


def admin_routes(running: Running) -> list[tuple[str, str]]:
    policy = default_policy()
    routes = []
    for route in running.client.app.routes:
        if not isinstance(route, APIRoute):
            continue
        for verb in route.methods:
            rule = policy.routes[f"{verb} {route.path}"]
            if rule.roles == {ADMIN}:
                routes.append((verb, route.path.format(**EXAMPLE_PATH_VALUES)))
    return routes


async def test_a_viewer_or_an_anonymous_caller_cannot_call_admin_routes(running: Running) -> None:
    client = running.client
    await client.create_user(running.admin_token, "alice", ["viewer"])
    viewer = await client.create_user(running.admin_token, "victor", ["viewer", "trader"])
    token = await client.token(viewer)
    routes = admin_routes(running)
    assert len(routes) >= 15
    for verb, path in routes:
        as_viewer = await client.http.request(verb, path, headers=bearer(token), json={})
        assert as_viewer.status_code == 403, (verb, path, as_viewer.text)
        assert as_viewer.headers["content-type"] == "application/problem+json"
        anonymous = await client.http.request(verb, path, json={})
        assert anonymous.status_code == 401, (verb, path)
        forged = await client.http.request(verb, path, headers=bearer(token[:-4] + "AAAA"), json={})
        assert forged.status_code == 401, (verb, path)
    # Nothing was changed by any of it.
    users = await client.http.get("/api/v1/users", headers=bearer(running.admin_token))
    assert {u["username"]: u["roles"] for u in users.json()}["alice"] == ["viewer"]


async def test_an_api_key_is_exchanged_for_a_token_with_its_roles_until_it_expires(running: Running) -> None:
    client = running.client
    admin = bearer(running.admin_token)
    await client.create_user(running.admin_token, "ci-bot", ["viewer", "trader"])
    created = await client.http.post(
        "/api/v1/apikeys",
        json={"name": "nightly ci", "owner": "ci-bot", "roles": ["viewer"], "expires_in_s": 3},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    api_key = created.json()["api_key"]
    exchanged = await client.http.post("/api/v1/auth/token", json={"api_key": api_key})
    assert exchanged.status_code == 200 and exchanged.json()["roles"] == ["viewer"]
    assert exchanged.json()["refresh_token"] is None and exchanged.json()["expires_in"] <= 3
    me = await client.http.get("/api/v1/auth/me", headers=bearer(exchanged.json()["access_token"]))
    assert me.json()["subject"] == "ci-bot" and me.json()["roles"] == ["viewer"]
    listed = await client.http.get("/api/v1/apikeys", headers=admin)
    assert [k["key_id"] for k in listed.json()] == [created.json()["key"]["key_id"]]
    assert api_key not in listed.text and "secret_hash" not in listed.text
    await asyncio.sleep(max(0.0, created.json()["key"]["expires_at"] - time.time()) + 0.2)
    expired = await client.http.post("/api/v1/auth/token", json={"api_key": api_key})
    assert expired.status_code == 401 and expired.json()["detail"] == "invalid API key"
    assert (await client.http.get("/api/v1/apikeys", headers=admin)).json() == []


async def test_a_revoked_api_key_and_its_tokens_are_refused(running: Running) -> None:
    client = running.client
    admin = bearer(running.admin_token)
    await client.create_user(running.admin_token, "deployer", ["operator"])
    created = (
        await client.http.post(
            "/api/v1/apikeys", json={"name": "deploys", "owner": "deployer", "roles": ["operator"]}, headers=admin
        )
    ).json()
    access = (await client.http.post("/api/v1/auth/token", json={"api_key": created["api_key"]})).json()
    assert (await client.http.get("/api/v1/auth/me", headers=bearer(access["access_token"]))).status_code == 200
    revoked = await client.http.delete(f"/api/v1/apikeys/{created['key']['key_id']}", headers=admin)
    assert revoked.status_code == 200
    assert (await client.http.post("/api/v1/auth/token", json={"api_key": created["api_key"]})).status_code == 401
    assert (await client.http.get("/api/v1/auth/me", headers=bearer(access["access_token"]))).status_code == 401
    # A key's secret guessed with the right id, or a key of the wrong shape, is refused the same way.
    key_id = created["key"]["key_id"]
    for guess in (f"tpk_{key_id}_{'A' * 43}", "tpk_nothing", "x" * 200):
        refused = await client.http.post("/api/v1/auth/token", json={"api_key": guess})
        assert refused.status_code == 401 and refused.json()["detail"] == "invalid API key"
    events = [e for e in await running.events() if e.WhichOneof("event") in ("api_key_created", "api_key_revoked")]
    assert [(e.actor, e.WhichOneof("event")) for e in events] == [
        (f"user:{running.admin.username}", "api_key_created"),
        (f"user:{running.admin.username}", "api_key_revoked"),
    ]


async def test_an_api_key_never_carries_more_than_its_owner_holds(running: Running) -> None:
    client = running.client
    admin = bearer(running.admin_token)
    await client.create_user(running.admin_token, "scripts", ["viewer", "trader"])
    wider = await client.http.post(
        "/api/v1/apikeys", json={"name": "too wide", "owner": "scripts", "roles": ["admin"]}, headers=admin
    )
    assert wider.status_code == 422 and wider.json()["errors"][0]["field"] == "roles"
    too_long = await client.http.post(
        "/api/v1/apikeys",
        json={"name": "forever", "owner": "scripts", "roles": ["viewer"], "expires_in_s": 10**9},
        headers=admin,
    )
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "expires_in_s"
    created = (
        await client.http.post(
            "/api/v1/apikeys", json={"name": "both", "owner": "scripts", "roles": ["viewer", "trader"]}, headers=admin
        )
    ).json()
    # The owner loses a role: the key's tokens lose it too.
    await client.http.delete("/api/v1/users/scripts/roles/trader", headers=admin)
    exchanged = (await client.http.post("/api/v1/auth/token", json={"api_key": created["api_key"]})).json()
    assert exchanged["roles"] == ["viewer"]
    await client.http.post("/api/v1/users/scripts/disable", headers=admin)
    assert (await client.http.post("/api/v1/auth/token", json={"api_key": created["api_key"]})).status_code == 401


async def test_the_last_admin_cannot_be_removed(running: Running) -> None:
    client = running.client
    admin = bearer(running.admin_token)
    name = running.admin.username
    refused = await client.http.delete(f"/api/v1/users/{name}/roles/admin", headers=admin)
    assert refused.status_code == 403 and "last enabled admin" in refused.json()["detail"]
    assert (await client.http.post(f"/api/v1/users/{name}/disable", headers=admin)).status_code == 403
    second = await client.create_user(running.admin_token, "second-admin", ["admin"])
    assert (await client.http.delete(f"/api/v1/users/{name}/roles/admin", headers=admin)).status_code == 200
    # The first admin's sessions ended with the role; the second admin carries on.
    assert (await client.http.get("/api/v1/users", headers=admin)).status_code == 401
    assert (await client.http.get("/api/v1/users", headers=bearer(await client.token(second)))).status_code == 200


async def test_bad_input_is_a_problem_naming_the_field(running: Running) -> None:
    client = running.client
    admin = bearer(running.admin_token)
    cases = [
        ("/api/v1/auth/login", {"username": "a", "password": "b", "extra": 1}, "extra", "unknown field"),
        ("/api/v1/auth/login", {"username": "a"}, "password", "Field required"),
        ("/api/v1/auth/login", {"username": "a", "password": "b", "totp_code": "12ab56"}, "totp_code", "pattern"),
        ("/api/v1/auth/login", {"username": "a", "password": "p" * 2000}, "password", "at most 1024"),
        ("/api/v1/users", {"username": "Bad Name!", "roles": ["viewer"]}, "username", "pattern"),
        ("/api/v1/users", {"username": "newbie", "roles": ["wizard"]}, "roles", "unknown role"),
        ("/api/v1/users", {"username": "newbie", "password": "short"}, "password", "at least 12"),
        ("/api/v1/users", {"username": "newbie", "password": "newbie-is-my-password"}, "password", "username"),
        ("/api/v1/apikeys", {"name": "k", "owner": "nobody-here", "roles": ["viewer"]}, "owner", "no user"),
    ]
    for path, body, field, message in cases:
        response = await client.http.post(path, json=body, headers=admin)
        assert response.status_code == 422, (path, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 422 and problem["errors"][0]["field"] == field, problem
        assert message in problem["errors"][0]["message"], problem
    garbage = await client.http.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 422 and "Traceback" not in garbage.text
    assert (await client.http.get("/api/v1/nothing-here")).json()["status"] == 404
    # Nothing half-made: the refused user does not exist.
    assert (await client.http.get("/api/v1/users/newbie", headers=admin)).status_code == 404
    duplicate = await client.http.post(
        "/api/v1/users", json={"username": running.admin.username, "password": PASSWORD}, headers=admin
    )
    assert duplicate.status_code == 409 and duplicate.json()["errors"][0]["field"] == "username"


async def test_the_published_api_description_lists_only_routes_the_policy_knows(running: Running) -> None:
    client = running.client
    described = await client.http.get("/api/v1/openapi.json")
    assert described.status_code == 200
    policy = default_policy()
    operations = [
        f"{verb.upper()} {path}"
        for path, item in described.json()["paths"].items()
        for verb in item
        if verb != "parameters"
    ]
    assert len(operations) >= 20
    assert [op for op in operations if op not in policy.routes] == []
    # The Swagger and ReDoc pages (scripts from a CDN) are not served.
    assert (await client.http.get("/docs")).status_code == 404
    assert (await client.http.get("/redoc")).status_code == 404
