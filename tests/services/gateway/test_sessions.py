"""Sessions as an attacker sees them: a stolen refresh token used after its owner (or before), a revoked session, a
logout, and two refreshes racing with one token."""

from __future__ import annotations

import asyncio

import pytest
from gateway_service.sessions import REVOCATION_MARGIN_S
from redis.asyncio import Redis

from tests.services.gateway.helpers import Running, bearer

pytestmark = pytest.mark.integration


async def refresh(running: Running, token: str) -> tuple[int, dict[str, str]]:
    response = await running.client.http.post("/api/v1/auth/refresh", json={"refresh_token": token})
    return response.status_code, response.json()


async def test_refresh_rotates_and_a_replayed_refresh_token_revokes_the_session(
    running: Running, redis_url: str
) -> None:
    client = running.client
    grace = await client.create_user(running.admin_token, "grace", ["trader"])
    login = (await client.login(grace)).json()
    first = login["refresh_token"]
    status, rotated = await refresh(running, first)
    assert status == 200 and rotated["refresh_token"] != first and rotated["session_id"] == login["session_id"]
    # The thief replays the old token: refused, and the whole session ends (the owner's new token too).
    status, replay = await refresh(running, first)
    assert status == 401 and replay["detail"] == "invalid refresh token"
    assert (await refresh(running, rotated["refresh_token"]))[0] == 401
    for access in (login["access_token"], rotated["access_token"]):
        me = await client.http.get("/api/v1/auth/me", headers=bearer(access))
        assert me.status_code == 401 and me.json()["detail"] == "session revoked"
    # The contract's revocation key, for every service's verifier, outlives the session's last access token.
    redis = Redis.from_url(redis_url)
    try:
        key = f"identity:revoked:{login['session_id']}"
        assert await redis.get(key) == b"1"
        assert await redis.ttl(key) > running.settings.gateway.access_token_ttl_s
        assert await redis.ttl(key) <= running.settings.gateway.access_token_ttl_s + REVOCATION_MARGIN_S
    finally:
        await redis.aclose()
    revoked = [e for e in await running.events() if e.WhichOneof("event") == "session_revoked"]
    assert [(e.session_revoked.session_id, e.session_revoked.reason) for e in revoked] == [
        (login["session_id"], "refresh_replayed")
    ]


async def test_the_login_and_refresh_answers_name_the_user_and_roles_as_me_does(running: Running) -> None:
    """A client draws the user's view from the token answer alone (the dashboard does not wait for /auth/me)."""
    client = running.client
    ivan = await client.create_user(running.admin_token, "ivan", ["viewer", "trader"])
    login = (await client.login(ivan)).json()
    assert (login["username"], login["roles"]) == ("ivan", ["trader", "viewer"])
    # a role granted since the login is in the next refresh's answer, as in its token
    granted = await client.http.post(
        "/api/v1/users/ivan/roles", json={"role": "risk-officer"}, headers=bearer(running.admin_token)
    )
    assert granted.status_code == 200, granted.text
    status, refreshed = await refresh(running, login["refresh_token"])
    assert status == 200
    assert (refreshed["username"], refreshed["roles"]) == ("ivan", ["risk-officer", "trader", "viewer"])
    me = (await client.http.get("/api/v1/auth/me", headers=bearer(refreshed["access_token"]))).json()
    assert (me["subject"], me["roles"], me["session_id"]) == (
        refreshed["username"],
        refreshed["roles"],
        refreshed["session_id"],
    )
    # and the published description says so
    spec = (await client.http.get("/api/v1/openapi.json")).json()
    token = spec["components"]["schemas"]["TokenResponse"]
    assert {"username", "roles"} <= set(token["required"])
    refresh_answer = spec["paths"]["/api/v1/auth/refresh"]["post"]["responses"]["200"]["content"]["application/json"]
    assert refresh_answer["schema"] == {"$ref": "#/components/schemas/TokenResponse"}


async def test_two_refreshes_racing_with_one_token_cannot_both_win(running: Running) -> None:
    client = running.client
    heidi = await client.create_user(running.admin_token, "heidi", ["viewer"])
    token = (await client.login(heidi)).json()["refresh_token"]
    results = await asyncio.gather(*(refresh(running, token) for _ in range(8)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [401] * 7
    # The losers were replays: the session is gone, including the winner's new refresh token.
    winner = next(body for status, body in results if status == 200)
    assert (await refresh(running, winner["refresh_token"]))[0] == 401


async def test_a_revoked_sessions_refresh_token_fails(running: Running) -> None:
    client = running.client
    ivan = await client.create_user(running.admin_token, "ivan", ["viewer"])
    login = (await client.login(ivan)).json()
    other = (await client.login(ivan)).json()
    sessions = await client.http.get("/api/v1/users/ivan/sessions", headers=bearer(running.admin_token))
    assert {s["session_id"] for s in sessions.json()} == {login["session_id"], other["session_id"]}
    revoked = await client.http.delete(f"/api/v1/sessions/{login['session_id']}", headers=bearer(running.admin_token))
    assert revoked.status_code == 200
    assert (await refresh(running, login["refresh_token"]))[0] == 401
    assert (await client.http.get("/api/v1/auth/me", headers=bearer(login["access_token"]))).status_code == 401
    # Only that session: the other one still refreshes.
    assert (await refresh(running, other["refresh_token"]))[0] == 200
    again = await client.http.delete(f"/api/v1/sessions/{login['session_id']}", headers=bearer(running.admin_token))
    assert again.status_code == 404
    actors = [
        (e.actor, e.session_revoked.reason)
        for e in await running.events()
        if e.WhichOneof("event") == "session_revoked"
    ]
    assert actors == [(f"user:{running.admin.username}", "admin")]


async def test_logout_ends_the_session_with_the_access_or_the_refresh_token(running: Running) -> None:
    client = running.client
    judy = await client.create_user(running.admin_token, "judy", ["viewer"])
    by_access = (await client.login(judy)).json()
    out = await client.http.post("/api/v1/auth/logout", headers=bearer(by_access["access_token"]))
    assert out.status_code == 200 and out.json() == {"revoked_session_ids": [by_access["session_id"]]}
    assert (await refresh(running, by_access["refresh_token"]))[0] == 401
    assert (await client.http.get("/api/v1/auth/me", headers=bearer(by_access["access_token"]))).status_code == 401
    by_refresh = (await client.login(judy)).json()
    out = await client.http.post("/api/v1/auth/logout", json={"refresh_token": by_refresh["refresh_token"]})
    assert out.status_code == 200 and out.json() == {"revoked_session_ids": [by_refresh["session_id"]]}
    assert (await client.http.get("/api/v1/auth/me", headers=bearer(by_refresh["access_token"]))).status_code == 401
    # A made-up refresh token logs nobody out.
    forged = by_refresh["session_id"] + ".forged"
    assert (await client.http.post("/api/v1/auth/logout", json={"refresh_token": forged})).status_code == 401


async def test_disabling_a_user_or_revoking_a_role_ends_their_sessions(running: Running) -> None:
    client = running.client
    mallory = await client.create_user(running.admin_token, "mallory", ["trader"])
    token = await client.token(mallory)
    admin = bearer(running.admin_token)
    revoked = await client.http.delete("/api/v1/users/mallory/roles/trader", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["roles"] == []
    assert (await client.http.get("/api/v1/auth/me", headers=bearer(token))).status_code == 401
    await client.http.post("/api/v1/users/mallory/roles", json={"role": "viewer"}, headers=admin)
    mallory.roles = ["viewer"]  # a viewer logs in without a code
    viewer = await client.token(mallory)
    disabled = await client.http.post("/api/v1/users/mallory/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert (await client.http.get("/api/v1/auth/me", headers=bearer(viewer))).status_code == 401
    assert (await client.login(mallory)).status_code == 401
    assert (await client.http.post("/api/v1/users/mallory/enable", headers=admin)).status_code == 200
    assert (await client.login(mallory)).status_code == 200
    by_admin = [e for e in await running.events() if e.actor == f"user:{running.admin.username}"]
    kinds = [
        e.WhichOneof("event")
        for e in by_admin
        if e.WhichOneof("event") not in ("admin_bootstrapped", "login_succeeded")
    ]
    # each change is recorded (listing the sessions it ends) before its sessions end, each with its own event
    assert kinds == [
        "user_created",
        "role_revoked",
        "session_revoked",
        "role_granted",
        "user_disabled",
        "session_revoked",
        "user_enabled",
    ]
