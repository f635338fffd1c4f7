"""`tradectl up` starts the gateway as a process (its own Vault policy and AppRole, its Kafka principal, a one-time
bootstrap secret), and the operator's CLI works against it: the first admin, login with password and TOTP, tokens
kept owner-only and refreshed by themselves, the admin's commands, logout."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hvac
import pyotp
import pytest
from tradectl import auth
from tradectl.main import app
from tradectl.stack import SERVICES, Platform
from trading_platform.messaging import replay
from typer.testing import CliRunner

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PASSWORD = "a long enough admin passphrase"
runner = CliRunner()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    gateway = next(spec for spec in SERVICES if spec.name == "gateway")
    run = Platform.with_free_ports(
        tmp_path_factory.mktemp("gateway-platform"),
        services=(gateway,),
        service_env={
            "gateway": {"TRADING_GATEWAY__ARGON2_MEMORY_KIB": "8192", "TRADING_GATEWAY__ARGON2_TIME_COST": "1"}
        },
    )
    try:
        states = run.up(timeout_s=120)
        assert states == {"gateway": "SERVING"}, run.process("gateway").log_tail(40)
        yield run
    finally:
        run.down()


@dataclass
class Admin:
    username: str
    totp: pyotp.TOTP
    used: set[str]

    def code(self) -> str:
        """A code of this step or a neighbour not used yet (the gateway takes each once)."""
        for offset in (0, -1, 1):
            code = self.totp.at(time.time() + 30 * offset)
            if code not in self.used:
                self.used.add(code)
                return code
        raise RuntimeError("every code of this minute is used")


@pytest.fixture(scope="module")
def first_admin(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Admin:
    """The first admin, made once with the one-time secret `tradectl up` left in the dev Vault."""
    assert platform.gateway_bootstrap_waiting
    env = {
        "TRADECTL_PASSWORD": PASSWORD,
        "TRADECTL_RUN_DIR": str(platform.run_dir),
        "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("bootstrap-config")),
    }
    made = runner.invoke(
        app, ["users", "bootstrap", "-u", "root-admin", "--run-dir", str(platform.run_dir), "--json"], env=env
    )
    assert made.exit_code == 0, made.output
    enrolment = json.loads(made.stdout)
    assert enrolment["user"]["roles"] == ["admin"]
    again = runner.invoke(app, ["users", "bootstrap", "-u", "root-two", "--run-dir", str(platform.run_dir)], env=env)
    assert again.exit_code == 1 and "no bootstrap secret" in again.output  # used once, gone from Vault
    return Admin("root-admin", pyotp.TOTP(enrolment["totp_secret"]), set())


@pytest.fixture
def operator(platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh operator's config folder, pointed at the platform's run folder."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("TRADECTL_RUN_DIR", str(platform.run_dir))
    for name in ("TRADECTL_GATEWAY_URL", "TRADECTL_API_KEY", "TRADECTL_PASSWORD", "TRADECTL_TOTP"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "config" / "tradectl"


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


def test_up_starts_the_gateway_with_its_own_least_privilege_approle(platform: Platform) -> None:
    endpoints = platform.stack.endpoints()
    recorded = json.loads((platform.run_dir / "platform.json").read_text())
    assert recorded["gateway_url"] == platform.gateway_url
    assert httpx.get(f"{platform.gateway_url}/.well-known/jwks.json").json()["keys"][0]["kty"] == "OKP"
    root = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
    # The JWKS the services read sits where the contract says, and matches what the gateway serves.
    published = root.secrets.kv.v2.read_secret_version(path="trading/gateway/jwks", raise_on_deleted_version=True)
    assert (
        json.loads(published["data"]["data"]["jwks"])
        == httpx.get(f"{platform.gateway_url}/.well-known/jwks.json").json()
    )
    # The gateway's own AppRole reads its subtree and nothing else (not the broker's keys).
    role = json.loads((Path(endpoints.approle_dir) / "gateway.json").read_text())
    assert stat.S_IMODE((Path(endpoints.approle_dir) / "gateway.json").stat().st_mode) == 0o600
    gateway = hvac.Client(url=endpoints.vault_addr)
    gateway.auth.approle.login(role_id=role["role_id"], secret_id=role["secret_id"])
    gateway.secrets.kv.v2.read_secret_version(path="trading/gateway/signing", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        gateway.secrets.kv.v2.read_secret_version(path="trading/alpaca", raise_on_deleted_version=True)


def test_the_operator_logs_in_is_refreshed_and_logs_out(platform: Platform, first_admin: Admin, operator: Path) -> None:
    no_code = invoke("login", "-u", "root-admin", env={"TRADECTL_PASSWORD": PASSWORD})
    assert no_code.exit_code == 1 and "invalid username, password or code" in no_code.output
    login = invoke("login", "-u", "root-admin", "--totp", first_admin.code(), env={"TRADECTL_PASSWORD": PASSWORD})
    assert login.exit_code == 0, login.output
    credentials_file = operator / "credentials.json"
    assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(operator.stat().st_mode) == 0o700
    first = json.loads(credentials_file.read_text())
    assert auth.bearer_metadata() == [("authorization", f"Bearer {first['access_token']}")]
    # About to expire: the next command's token is refreshed by itself, the refresh token rotated.
    credentials_file.write_text(json.dumps({**first, "expires_at": time.time() + 5}))
    refreshed = auth.bearer_metadata()
    second = json.loads(credentials_file.read_text())
    assert refreshed == [("authorization", f"Bearer {second['access_token']}")]
    assert second["refresh_token"] != first["refresh_token"] and second["session_id"] == first["session_id"]
    # The admin's commands.
    created = invoke("users", "create", "quant", "--role", "trader", "--role", "viewer", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["user"]["roles"] == ["trader", "viewer"]
    assert invoke("roles", "revoke", "quant", "trader").exit_code == 0
    listed = json.loads(invoke("users", "list", "--json").stdout)
    assert {u["username"]: u["roles"] for u in listed} == {"root-admin": ["admin"], "quant": ["viewer"]}
    key = invoke("apikeys", "create", "ci", "--owner", "quant", "--role", "viewer", "--json")
    assert key.exit_code == 0, key.output
    api_key = json.loads(key.stdout)["api_key"]
    assert [k["owner"] for k in json.loads(invoke("apikeys", "list", "--json").stdout)] == ["quant"]
    assert invoke("roles", "grant", "quant", "wizard").exit_code == 1  # refused, naming the role
    # A script logs in with an API key from its environment.
    scripted = runner.invoke(
        app, ["login"], env={"TRADECTL_API_KEY": api_key, "XDG_CONFIG_HOME": str(operator.parent / "ci")}
    )
    assert scripted.exit_code == 0 and "quant (viewer)" in scripted.output
    # Logout ends the session: the stored refresh token no longer works anywhere.
    out = invoke("logout")
    assert out.exit_code == 0 and not credentials_file.exists()
    refused = httpx.post(f"{platform.gateway_url}/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert refused.status_code == 401
    assert auth.bearer_metadata() == []
    kafka = platform.stack.endpoints().kafka_admin()
    events = _events(kafka)
    assert ("user:root-admin", "admin_bootstrapped") in events
    assert ("user:root-admin", "role_revoked") in events and ("user:root-admin", "api_key_created") in events
    assert ("user:root-admin", "session_revoked") in events  # the logout


def _events(kafka: Any) -> list[tuple[str, str]]:
    import asyncio

    async def read() -> list[tuple[str, str]]:
        return [(m.value.actor, m.value.WhichOneof("event")) async for m in replay(kafka, "identity.events.v1")]

    return asyncio.run(read())


def test_tradectl_processes_refreshing_at_once_spend_the_refresh_token_once(
    platform: Platform, first_admin: Admin, operator: Path
) -> None:
    """Without the lock, the second refresh would present a used token: a replay, which ends the session."""
    login = invoke("login", "-u", "root-admin", "--totp", first_admin.code(), env={"TRADECTL_PASSWORD": PASSWORD})
    assert login.exit_code == 0, login.output
    credentials_file = operator / "credentials.json"
    stale = json.loads(credentials_file.read_text())
    credentials_file.write_text(json.dumps({**stale, "expires_at": time.time()}))
    with ThreadPoolExecutor(4) as pool:
        tokens = list(pool.map(lambda _: auth.bearer_metadata(), range(4)))
    assert len({tuple(t) for t in tokens}) == 1 and tokens[0]
    users = httpx.get(f"{platform.gateway_url}/api/v1/users", headers=dict(tokens[0]))
    assert users.status_code == 200  # the session lives on
