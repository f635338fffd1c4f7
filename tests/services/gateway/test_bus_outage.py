"""The bus goes away under a running gateway: logins and admin changes answer 503 application/problem+json with
Retry-After and change nothing (no token, no session, no user, no role), a session already held keeps refreshing,
and once the broker is back the same requests succeed and the ledger holds only what was done. On a stack of its
own (embedded Kafka, Redis, Vault), whose broker the test stops and starts again."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import hvac
import pytest
from gateway_service.events import PROBE_CACHE_S
from trading_platform.devstack import DevStack, Endpoints, StackPorts, free_port
from trading_platform.testing.plugin import VaultEndpoint

from tests.services.gateway.helpers import (
    PASSWORD,
    Account,
    GatewayClient,
    bearer,
    bootstrap_admin,
    gateway_settings,
    start_gateway,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevStack, Endpoints]]:
    devstack = DevStack(
        tmp_path_factory.mktemp("gateway-outage"), StackPorts(free_port(), free_port(), free_port()), secure=False
    )
    try:
        yield devstack, devstack.up()
    finally:
        devstack.down()


@pytest.fixture
async def gateway(stack: tuple[DevStack, Endpoints]) -> AsyncIterator[tuple[DevStack, Any, GatewayClient, Account]]:
    devstack, endpoints = stack
    vault = VaultEndpoint(endpoints.vault_addr, endpoints.vault_token())
    namespace = f"outage{uuid.uuid4().hex[:8]}"
    settings = gateway_settings(endpoints.kafka_bootstrap, endpoints.redis_url, vault, namespace, namespace)
    app, client = await start_gateway(settings)
    try:
        admin = await bootstrap_admin(client, hvac.Client(url=vault.address, token=vault.token), settings)
        yield devstack, app, client, admin
    finally:
        if not devstack.kafka.running():
            devstack.up()  # the next test gets its broker back
        await client.aclose()
        await app.stop()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["status"] == 503 and "event bus" in body["detail"]
    assert "access_token" not in body and "Traceback" not in response.text


async def until_ok(call: Any, timeout_s: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        response = await call()
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(1)


async def test_writes_fail_cleanly_while_the_bus_is_down_and_work_again_after(gateway: Any) -> None:
    devstack, app, client, admin = gateway
    engine = app.engine
    admin_token = await client.token(admin)
    trader = await client.create_user(admin_token, "trader-" + uuid.uuid4().hex[:6], ["viewer"])
    held = (await client.login(trader)).json()
    sessions_before = {s.session_id for s in await engine.sessions.of_user(admin.username)}

    devstack.kafka.stop()
    await asyncio.sleep(PROBE_CACHE_S)  # the answer the cluster gave just before it stopped has lapsed
    newbie = "newbie-" + uuid.uuid4().hex[:6]
    create = {"username": newbie, "roles": ["viewer"], "password": PASSWORD}

    assert_unavailable(await client.login(admin))
    assert {s.session_id for s in await engine.sessions.of_user(admin.username)} == sessions_before
    assert_unavailable(await client.http.post("/api/v1/users", json=create, headers=bearer(admin_token)))
    assert await engine.users.get(newbie) is None
    grant = {"role": "trader"}
    assert_unavailable(
        await client.http.post(f"/api/v1/users/{trader.username}/roles", json=grant, headers=bearer(admin_token))
    )
    assert_unavailable(await client.http.post(f"/api/v1/users/{trader.username}/disable", headers=bearer(admin_token)))
    user = await engine.users.get(trader.username)
    assert user is not None and user.roles == frozenset({"viewer"}) and not user.disabled
    # reading and refreshing record nothing: they go on
    refreshed = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": held["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert (await client.http.get(f"/api/v1/users/{trader.username}", headers=bearer(admin_token))).status_code == 200

    devstack.up()  # the same broker again
    login = await until_ok(lambda: client.login(admin))
    assert login.status_code == 200, login.text
    created = await client.http.post("/api/v1/users", json=create, headers=bearer(admin_token))
    assert created.status_code == 201, created.text

    # what the ledger sees: none of the refused changes, the later one once
    events = [e async for e in _events(app)]
    created_events = [
        e for e in events if e.WhichOneof("event") == "user_created" and e.user_created.username == newbie
    ]
    assert len(created_events) == 1
    assert not [e for e in events if e.WhichOneof("event") == "role_granted"]
    assert not [e for e in events if e.WhichOneof("event") == "user_disabled"]


async def _events(app: Any) -> AsyncIterator[Any]:
    from trading_platform.messaging import replay

    kafka = app.settings.kafka
    async for message in replay(kafka.bootstrap_servers, "identity.events.v1", namespace=kafka.namespace):
        yield message.value
