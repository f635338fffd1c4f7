"""Logins as an attacker tries them: wrong passwords, unknown users, brute force, a missing or replayed second
factor. Over the real Redis, OpenBao and Kafka; httpx against the ASGI app."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from argon2 import extract_parameters
from gateway_service.passwords import Passwords

from tests.services.gateway.helpers import PASSWORD, Account, Running, bearer

pytestmark = pytest.mark.integration


async def test_unknown_user_and_wrong_password_get_the_same_answer(running: Running) -> None:
    client = running.client
    alice = await client.create_user(running.admin_token, "alice", ["viewer"])
    wrong = await client.login(alice, password="not the password at all")
    unknown = await client.login(Account("mallory", PASSWORD, alice.totp_secret, ["viewer"]))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["content-type"] == unknown.headers["content-type"] == "application/problem+json"
    assert "alice" not in wrong.text and "mallory" not in unknown.text
    # A disabled user with the right password is told the same.
    await client.http.post("/api/v1/users/alice/disable", headers=bearer(running.admin_token))
    disabled = await client.login(alice)
    assert disabled.status_code == 401 and disabled.json() == wrong.json()
    failures = [e.login_failed for e in await running.events() if e.WhichOneof("event") == "login_failed"]
    assert [(f.username, f.reason) for f in failures] == [
        ("alice", "bad_credentials"),
        ("mallory", "unknown_user"),
        ("alice", "disabled"),
    ]


def test_an_unknown_user_costs_a_full_argon2id_verification() -> None:
    """The dummy hash checked for a missing user is made with the same Argon2id parameters as every real hash."""
    passwords = Passwords(time_cost=2, memory_kib=16384, parallelism=2)
    real = passwords.hasher.hash(PASSWORD)
    assert extract_parameters(passwords.dummy_hash) == extract_parameters(real)
    assert extract_parameters(real).type.name == "ID"
    assert passwords._verify(real, PASSWORD) and not passwords._verify(real, "wrong")
    # Even the dummy hash's own password would not log anyone in.
    assert not passwords._verify(None, PASSWORD)


# The limits' Redis deadline is raised: 40 logins at once on a loaded machine can take longer than its 1 s, and
# the test is about the lockout's counting, not about the fail-closed answer past that deadline (test_ratelimit.py).
@pytest.mark.gateway_config(
    user_backoff_after=5, user_lockout_after=5, address_lockout_after=1000, rate_limit_timeout_s=30
)
async def test_lockout_holds_under_brute_force(running: Running) -> None:
    client = running.client
    bob = await client.create_user(running.admin_token, "bob", ["trader"])
    guesses = [client.at(f"198.51.100.{i}").login(bob, password=f"guess-{i}", code="000000") for i in range(40)]
    answers = [response.status_code for response in await asyncio.gather(*guesses)]
    # Each attempt is counted before its password is checked: however parallel, only 5 were ever checked.
    assert answers.count(401) == 5 and answers.count(429) == 35
    # Locked: the right password and a valid code are refused too, from any address, with a Retry-After.
    locked = await client.at("192.0.2.99").login(bob)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 800
    # An unknown name locks the same way (the answers say nothing about who exists).
    ghost = Account("ghost", PASSWORD, bob.totp_secret, ["trader"])
    ghost_answers = [(await client.login(ghost, code="000000")).status_code for _ in range(7)]
    assert ghost_answers == [401] * 5 + [429] * 2
    events = await running.events()
    lockouts = [e.login_locked_out for e in events if e.WhichOneof("event") == "login_locked_out"]
    assert [(lock.scope, lock.subject) for lock in lockouts] == [("user", "bob"), ("user", "ghost")]
    # The admin's reset lifts the lockout (with a new password and a new TOTP secret).
    reset = await client.http.post(
        "/api/v1/users/bob/reset", json={"password": "a brand new passphrase"}, headers=bearer(running.admin_token)
    )
    assert reset.status_code == 200
    renewed = Account("bob", "a brand new passphrase", reset.json()["totp_secret"], ["trader"])
    assert (await client.login(renewed)).status_code == 200


@pytest.mark.gateway_config(user_backoff_after=2, user_lockout_after=10, backoff_base_ms=4000)
async def test_failures_back_off_before_the_lockout(running: Running) -> None:
    client = running.client
    carol = await client.create_user(running.admin_token, "carol", ["viewer"])
    first = [(await client.login(carol, password="wrong password")).status_code for _ in range(3)]
    assert first == [401, 401, 401]  # the third failure sets a wait before the next attempt
    too_soon = await client.login(carol)
    assert too_soon.status_code == 429 and 1 <= int(too_soon.headers["retry-after"]) <= 4
    assert too_soon.json()["detail"] == "too many failed attempts; try again later"


@pytest.mark.gateway_config(address_backoff_after=4, address_lockout_after=4)
async def test_one_address_spraying_many_users_is_locked_out(running: Running) -> None:
    client = running.client
    dave = await client.create_user(running.admin_token, "dave", ["viewer"])
    sprayer = client.at("203.0.113.66")
    answers = [(await sprayer.login(Account(f"user{i}", "password", "", ["viewer"]))).status_code for i in range(6)]
    assert answers == [401, 401, 401, 401, 429, 429]
    assert (await sprayer.login(dave)).status_code == 429  # the address, not the user, is locked
    assert (await client.at("203.0.113.67").login(dave)).status_code == 200
    events = await running.events()
    lockouts = [e.login_locked_out for e in events if e.WhichOneof("event") == "login_locked_out"]
    assert [(lock.scope, lock.subject) for lock in lockouts] == [("address", "203.0.113.66")]


async def test_every_role_but_viewer_needs_the_second_factor(running: Running) -> None:
    client = running.client
    for role in ("trader", "risk-officer", "model-manager", "operator", "admin"):
        account = await client.create_user(running.admin_token, f"u-{role}", [role])
        missing = await client.http.post(
            "/api/v1/auth/login", json={"username": account.username, "password": account.password}
        )
        assert missing.status_code == 401, role
        wrong = await client.login(account, code=wrong_code(account))
        assert wrong.status_code == 401, role
    viewer = await client.create_user(running.admin_token, "just-looking", ["viewer"])
    assert (await client.login(viewer)).status_code == 200


def wrong_code(account: Account) -> str:
    valid = {account.code(offset) for offset in (-1, 0, 1)}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in valid)


async def test_a_totp_code_works_once(running: Running) -> None:
    client = running.client
    erin = await client.create_user(running.admin_token, "erin", ["trader"])
    code = erin.code()
    first = await client.login(erin, code=code)
    assert first.status_code == 200 and first.json()["roles"] == ["trader"]
    replayed = await client.login(erin, code=code)
    assert replayed.status_code == 401


async def test_a_login_gives_a_token_the_services_accept(running: Running) -> None:
    from trading_platform.tokens import TokenVerifier
    from trading_platform.vault import read_secret

    client = running.client
    frank = await client.create_user(running.admin_token, "frank", ["trader", "viewer"])
    body: dict[str, Any] = (await client.login(frank)).json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == running.settings.gateway.access_token_ttl_s
    me = await client.http.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.json() == {
        "subject": "frank",
        "kind": "user",
        "roles": ["trader", "viewer"],
        "session_id": body["session_id"],
    }
    config = running.settings.gateway
    # What a service does: verify against the JWKS the gateway published in Vault.
    verifier = TokenVerifier(
        lambda: __import__("json").loads(read_secret(running.vault, f"{config.vault_path}/jwks", "jwks"))
    )
    verified = verifier.verify(body["access_token"])
    assert verified.subject == "frank" and verified.session_id == body["session_id"]
    assert verified.expires_at <= time.time() + config.access_token_ttl_s + 1
    # The refresh token is opaque, never a JWT, so it can never pass as an access token.
    assert body["refresh_token"].count(".") == 1
    refused = await client.http.get("/api/v1/auth/me", headers=bearer(body["refresh_token"]))
    assert refused.status_code == 401


@pytest.mark.gateway_config(address_backoff_after=3, address_lockout_after=3)
async def test_an_address_is_locked_for_its_failures_not_for_its_users_logins(running: Running) -> None:
    office = running.client.at("192.0.2.50")  # many users behind one address (an office, a CI runner)
    users = [await running.client.create_user(running.admin_token, f"staff{i}", ["viewer"]) for i in range(6)]
    assert [(await office.login(user)).status_code for user in users] == [200] * 6
    wrong = [(await office.login(user, password="not it")).status_code for user in users[:4]]
    assert wrong == [401, 401, 401, 429]
    # API-key guesses from one address are throttled the same way.
    flood = running.client.at("192.0.2.51")
    guesses = [
        (await flood.http.post("/api/v1/auth/token", json={"api_key": f"tpk_{i:016x}_{'A' * 43}"})).status_code
        for i in range(5)
    ]
    assert guesses == [401, 401, 401, 429, 429]
