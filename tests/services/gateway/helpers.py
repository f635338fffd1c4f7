"""Helpers of the gateway tests: a gateway over the session's real Redis, OpenBao and Kafka, each test with its own Redis prefix, Vault path and
topic namespace; helpers that log in the way a client does (password, TOTP code from the enrolment secret)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import hvac
import pyotp
from gateway_service.app import GatewayApp, create_app
from gateway_service.bootstrap import write_secret
from gateway_service.config import GatewaySettings
from gateway_service.engine import Engine
from trading_platform.messaging import ensure_topics, replay
from trading_platform.settings import load_settings
from trading_platform.testing.plugin import VaultEndpoint

PASSWORD = "correct horse battery staple"
# Argon2id still, at a cost two shared cores can afford for hundreds of hashes per test run.
CHEAP_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}


def gateway_settings(
    kafka_bootstrap: str, redis_url: str, vault: VaultEndpoint, namespace: str, redis_prefix: str, **gateway: Any
) -> GatewaySettings:
    return load_settings(
        GatewaySettings,
        kafka={"bootstrap_servers": kafka_bootstrap, "namespace": namespace},
        redis={"url": redis_url},
        vault={"addr": vault.address, "token": vault.token},
        gateway={
            "vault_path": f"trading/gateway-test-{uuid.uuid4().hex[:12]}",
            "redis_prefix": f"{redis_prefix}:gateway:",
            "port": 0,
            **CHEAP_ARGON2,
            **gateway,
        },
    )


@dataclass
class Account:
    username: str
    password: str
    totp_secret: str
    roles: list[str]

    def code(self, offset: int = 0) -> str:
        return pyotp.TOTP(self.totp_secret).at(time.time() + 30 * offset)


class GatewayClient:
    """httpx against the ASGI app, as one client address; login helpers that spend each TOTP code once."""

    def __init__(self, app: Any, engine: Engine, address: str = "203.0.113.10") -> None:
        self.app = app
        self.engine = engine
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000)),
            base_url="http://gateway",
        )
        self._spent: dict[str, set[str]] = {}

    def at(self, address: str) -> GatewayClient:
        """The same gateway, seen from another client address."""
        other = GatewayClient(self.app, self.engine, address)
        other._spent = self._spent
        return other

    def fresh_code(self, account: Account) -> str:
        """A TOTP code of the current, previous or next step this client has not used yet (each works once)."""
        spent = self._spent.setdefault(account.username, set())
        for offset in (0, -1, 1):
            code = account.code(offset)
            if code not in spent:
                spent.add(code)
                return code
        raise RuntimeError(f"every TOTP code of {account.username} for this minute is spent; wait for the next step")

    async def login(self, account: Account, *, code: str | None = None, password: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"username": account.username, "password": password or account.password}
        if code is not None:
            body["totp_code"] = code
        elif set(account.roles) - {"viewer"}:
            body["totp_code"] = self.fresh_code(account)
        return await self.http.post("/api/v1/auth/login", json=body)

    async def token(self, account: Account) -> str:
        response = await self.login(account)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def create_user(self, admin_token: str, username: str, roles: list[str]) -> Account:
        response = await self.http.post(
            "/api/v1/users",
            json={"username": username, "roles": roles, "password": PASSWORD},
            headers=bearer(admin_token),
        )
        assert response.status_code == 201, response.text
        return Account(username, PASSWORD, response.json()["totp_secret"], roles)

    async def aclose(self) -> None:
        await self.http.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@dataclass
class Running:
    settings: GatewaySettings
    gateway: GatewayApp
    client: GatewayClient
    admin: Account
    admin_token: str
    vault: hvac.Client

    @property
    def engine(self) -> Engine:
        assert self.gateway.engine is not None
        return self.gateway.engine

    async def events(self) -> list[Any]:
        kafka = self.settings.kafka
        return [m.value async for m in replay(kafka.bootstrap_servers, "identity.events.v1", namespace=kafka.namespace)]


async def start_gateway(settings: GatewaySettings) -> tuple[GatewayApp, GatewayClient]:
    """The gateway, once the topics its read model reads exist (the platform's start-up creates them)."""
    from tests.services.gateway.readmodel_helpers import READ_TOPICS

    kafka = settings.kafka
    await ensure_topics(kafka.bootstrap_servers, READ_TOPICS, namespace=kafka.namespace)
    gateway = GatewayApp(settings)
    await gateway.start()
    assert gateway.engine is not None
    return gateway, GatewayClient(create_app(gateway.engine), gateway.engine)


async def bootstrap_admin(client: GatewayClient, vault: hvac.Client, settings: GatewaySettings) -> Account:
    config = settings.gateway
    secret = write_secret(vault, config.vault_mount, config.vault_path)
    name = "admin-" + uuid.uuid4().hex[:6]
    response = await client.http.post(
        "/api/v1/auth/bootstrap", json={"secret": secret, "username": name, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    return Account(name, PASSWORD, response.json()["totp_secret"], ["admin"])
