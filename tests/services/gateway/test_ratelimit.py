"""Rate limits on every route, per user and per client address, stricter on the auth routes; the headers that tell
a client where it stands; a bad limit stops start-up; with Redis gone, writes and logins fail closed. Over the real
Redis, OpenBao and Kafka (and, for the outage, a Redis server of the test's own that it stops)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis
from trading_platform.devstack import redis_binary
from trading_platform.messaging import ensure_topics

from tests.services.gateway.helpers import Running, bearer, bootstrap_admin, start_gateway
from tests.services.gateway.readmodel_helpers import READ_TOPICS, api_gateway

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(
    make_settings: Any, vault_root: Any, kafka_bootstrap: str, topic_namespace: str, request: pytest.FixtureRequest
) -> AsyncIterator[Running]:
    """A started gateway (its read model's topics made first) with the limits of the test's gateway_config."""
    marker = request.node.get_closest_marker("gateway_config")
    config = marker.kwargs if marker else {}
    async with api_gateway(make_settings, vault_root, kafka_bootstrap, topic_namespace, **config) as api:
        yield api.running


def limit_headers(response: httpx.Response) -> tuple[int, int, int]:
    return (
        int(response.headers["ratelimit-limit"]),
        int(response.headers["ratelimit-remaining"]),
        int(response.headers["ratelimit-reset"]),
    )


@pytest.mark.gateway_config(rate_limit_user="5/minute", rate_limit_address="1000/minute")
async def test_a_user_past_the_limit_gets_429_with_retry_after_from_any_address(running: Running) -> None:
    client = running.client
    alice = await client.create_user(running.admin_token, "alice", ["viewer"])
    token = await client.token(alice)
    seen = []
    for _ in range(5):
        response = await client.http.get("/api/v1/auth/me", headers=bearer(token))
        assert response.status_code == 200, response.text
        seen.append(limit_headers(response))
    # Each allowed answer says how much of the tightest limit is left, and when it renews.
    assert [(limit, remaining) for limit, remaining, _ in seen] == [(5, 4), (5, 3), (5, 2), (5, 1), (5, 0)]
    assert all(1 <= reset <= 60 for _, _, reset in seen)
    refused = await client.http.get("/api/v1/auth/me", headers=bearer(token))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert limit_headers(refused)[:2] == (5, 0)
    assert "per user" in refused.json()["detail"]
    # The limit follows the user, not the address: from elsewhere, alice is still refused ...
    assert (await client.at("192.0.2.50").http.get("/api/v1/auth/me", headers=bearer(token))).status_code == 429
    # ... while another user from the same address is not.
    bob = await client.create_user(running.admin_token, "bob", ["viewer"])
    assert (await client.http.get("/api/v1/auth/me", headers=bearer(await client.token(bob)))).status_code == 200


async def test_a_reads_limits_and_its_sessions_revocation_are_one_redis_step(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An authenticated read asks Redis once: the limits' script also reads the session's revocation, and
    `authorize` takes that answer. A session ended between two reads is refused at the next."""
    client = running.client
    alice = await client.create_user(running.admin_token, "alice", ["viewer"])
    token = await client.token(alice)
    sessions = running.engine.sessions
    asked: list[str] = []
    is_revoked = sessions.is_revoked

    async def counted(sid: str) -> bool:
        asked.append(sid)
        return await is_revoked(sid)

    monkeypatch.setattr(sessions, "is_revoked", counted)
    for _ in range(3):
        assert (await client.http.get("/api/v1/auth/me", headers=bearer(token))).status_code == 200
    assert asked == []  # no second round trip for the revocation
    logout = await client.http.post("/api/v1/auth/logout", headers=bearer(token), json={})
    assert logout.status_code in (200, 204), logout.text
    asked.clear()  # logout's own checks
    refused = await client.http.get("/api/v1/auth/me", headers=bearer(token))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert asked == []


@pytest.mark.gateway_config(rate_limit_address="6/minute", rate_limit_user="1000/minute")
async def test_an_address_past_the_limit_is_refused_whoever_calls(running: Running) -> None:
    crowded = running.client.at("198.51.100.7")
    answers = [(await crowded.http.get("/healthz")).status_code for _ in range(6)]
    assert answers == [200] * 6
    assert (await crowded.http.get("/healthz")).status_code == 429
    # An authenticated caller from that address is refused too; the same caller elsewhere is served.
    admin = bearer(running.admin_token)
    assert (await crowded.http.get("/api/v1/users", headers=admin)).status_code == 429
    elsewhere = await running.client.at("198.51.100.8").http.get("/api/v1/users", headers=admin)
    assert elsewhere.status_code == 200
    assert limit_headers(elsewhere)[0] == 6


@pytest.mark.gateway_config(rate_limit_auth="3/minute", rate_limit_address="1000/minute")
async def test_the_auth_routes_have_a_stricter_limit_of_their_own(running: Running) -> None:
    guesser = running.client.at("198.51.100.20")
    body = {"username": "nobody", "password": "not a password"}  # pragma: allowlist secret (a wrong one)
    first = [(await guesser.http.post("/api/v1/auth/login", json=body)).status_code for _ in range(3)]
    assert first == [401] * 3
    refused = await guesser.http.post("/api/v1/auth/login", json=body)
    assert refused.status_code == 429 and refused.json()["title"] == "too many requests"
    assert "auth routes" in refused.json()["detail"]
    assert limit_headers(refused)[:2] == (3, 0)
    # The refused attempt spent nothing and reached nothing: no login failure was recorded for it.
    failures = [e for e in await running.events() if e.WhichOneof("event") == "login_failed"]
    assert len(failures) == 3
    # Reads from that address go on (the stricter limit is the auth writes'), and other addresses may log in.
    assert (await guesser.http.get("/healthz")).status_code == 200
    assert (await running.client.at("198.51.100.21").http.post("/api/v1/auth/login", json=body)).status_code == 401


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TRADING_GATEWAY__RATE_LIMIT_USER", "lots"),
        ("TRADING_GATEWAY__RATE_LIMIT_AUTH", "0/minute"),
        ("TRADING_GATEWAY__CORS_ORIGINS", "*"),
        ("TRADING_GATEWAY__MAX_BODY_BYTES", "12"),
    ],
)
def test_a_bad_limit_stops_start_up_naming_the_key(key: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADING_")}
    env.update({"TRADING_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1", key: value})
    started = subprocess.run(
        [sys.executable, "-m", "gateway_service"], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 2
    assert key in started.stderr and repr(value)[1:-1] in started.stderr


# -- Redis away ----------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def own_redis(tmp_path: Any) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own (the session's is shared), to stop under the gateway."""
    port = _free_port()
    process = subprocess.Popen(
        [str(redis_binary()), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 30
    while True:
        try:
            if redis.Redis.from_url(url, socket_timeout=1).ping():
                break
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield url, process
    finally:
        process.kill()
        process.wait()


async def test_with_redis_gone_logins_and_writes_fail_closed_and_reads_say_503(
    make_settings: Any,
    vault_root: Any,
    kafka_bootstrap: str,
    topic_namespace: str,
    own_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = own_redis
    await ensure_topics(kafka_bootstrap, READ_TOPICS, namespace=topic_namespace)
    settings = make_settings()
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": url})})
    gateway, client = await start_gateway(settings)
    try:
        admin = await bootstrap_admin(client, vault_root, settings)
        token = await client.token(admin)
        assert (await client.http.get("/api/v1/users", headers=bearer(token))).status_code == 200
        process.kill()
        process.wait()
        login = await client.login(admin)
        write = await client.http.post(
            "/api/v1/users", json={"username": "carol", "roles": ["viewer"]}, headers=bearer(token)
        )
        for refused in (login, write):
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) >= 1
        # A read is let past the limiter, but its token's revocation cannot be checked: 503 too, not a 500.
        read = await client.http.get("/api/v1/users", headers=bearer(token))
        assert read.status_code == 503 and "retry-after" in read.headers
        assert read.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in read.text
        # What needs no Redis still answers: liveness and the JWKS (without rate-limit headers).
        health = await client.http.get("/healthz")
        jwks = await client.http.get("/.well-known/jwks.json")
        assert health.status_code == jwks.status_code == 200
        assert "ratelimit-limit" not in health.headers
    finally:
        await client.aclose()
        await gateway.stop()
