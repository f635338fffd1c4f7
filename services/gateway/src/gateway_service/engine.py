"""The identity engine: logins, refreshes, API-key exchange, the first admin, and the admin's changes to users, roles,
keys and sessions. Every login, failure, lockout and change is published on identity.events.v1 with its actor.

A change the audit ledger cannot record is not made (`BusUnavailable`, a 503 with Retry-After): each login and admin
change first asks the bus (`events.ready()`), and when its event still cannot be published the change is undone (a
login's session is ended before any token leaves, a created user or key is removed, a role or a user's state is put
back). Revocations (a session, an API key, a user's sessions) are published first and made after, so an outage never
leaves a revocation unrecorded nor a revoked session undone. Refreshing a session publishes nothing and goes on.

The HTTP layer (routes/) only parses and answers; every decision is here. Failures that could tell an attacker
something (which users exist, whether the password was right before the second factor) all end in the same
`Unauthorized(LOGIN_FAILED)` after the same work.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from trading.identity.v1 import identity_pb2 as events
from trading_platform.identity import ADMIN, Identity
from trading_platform.observability import get_logger
from trading_platform.tokens import InvalidToken, TokenVerifier, VerifiedToken

from gateway_service import apikeys as apikeys_module
from gateway_service.apikeys import ApiKeyStore
from gateway_service.bootstrap import Bootstrap
from gateway_service.config import GatewayConfig
from gateway_service.events import ANONYMOUS, IdentityEvents
from gateway_service.passwords import Passwords, generate_password
from gateway_service.problems import (
    BusUnavailable,
    Conflict,
    Forbidden,
    Gone,
    InvalidField,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from gateway_service.sessions import SessionStore
from gateway_service.signing import SigningKeys
from gateway_service.throttle import Limits, LoginThrottle
from gateway_service.totp import SecondFactor, provisioning_uri
from gateway_service.users import User, UserExistsError, UserStore, check_roles

log = get_logger("gateway")
LOGIN_FAILED = "invalid username, password or code"
TOO_MANY = "too many failed attempts; try again later"
VERIFIED_CACHE = 4096  # tokens whose signature was checked, kept until they expire


@dataclass(frozen=True)
class Issued:
    access_token: str
    expires_in: int
    session_id: str
    username: str
    roles: frozenset[str]
    refresh_token: str | None = None


@dataclass(frozen=True)
class Enrolment:
    user: User
    password: str | None  # set when the gateway generated it
    totp_uri: str


class Engine:
    def __init__(
        self, config: GatewayConfig, redis: Redis, keys: SigningKeys, bootstrap: Bootstrap, events_out: IdentityEvents
    ) -> None:
        self.config = config
        self.redis = redis
        self.keys = keys
        self.bootstrap_secret = bootstrap
        self.events = events_out
        prefix = config.redis_prefix
        self.users = UserStore(redis, prefix)
        self.sessions = SessionStore(
            redis, prefix, config.refresh_token_ttl_s, config.session_max_s, config.access_token_ttl_s
        )
        self.apikeys = ApiKeyStore(redis, prefix)
        self.second_factor = SecondFactor(redis, prefix)
        self.passwords = Passwords(config.argon2_time_cost, config.argon2_memory_kib, config.argon2_parallelism)
        self.throttle = LoginThrottle(
            redis,
            prefix,
            config.login_window_s,
            Limits(
                config.user_backoff_after,
                config.user_lockout_after,
                config.lockout_s,
                config.backoff_base_ms,
                config.backoff_max_ms,
            ),
            Limits(
                config.address_backoff_after,
                config.address_lockout_after,
                config.lockout_s,
                config.backoff_base_ms,
                config.backoff_max_ms,
            ),
        )
        self._verifier = TokenVerifier(self.keys.jwks)
        self._verifier_keys = self.keys.version
        self._verified: OrderedDict[str, VerifiedToken] = OrderedDict()

    @property
    def verifier(self) -> TokenVerifier:
        """Verifies against the keys held now: rebuilt whenever they change, so a key dropped from the JWKS is
        refused here at once (a verifier only re-reads its keys for a kid it does not know)."""
        if self._verifier_keys != self.keys.version:
            self._verifier = TokenVerifier(self.keys.jwks)
            self._verifier_keys = self.keys.version
            self._verified.clear()
        return self._verifier

    def verify(self, token: str) -> VerifiedToken:
        """The token's claims, its signature checked once: a token already verified is taken from the last
        VERIFIED_CACHE verified ones (keyed by the whole token) until its expiry, and the cache is emptied whenever
        the signing keys change. Profiled under load, the Ed25519 check and PyJWT's parsing were a fifth of a
        request's time in the gateway. Revocation is not cached: `authenticate` asks Redis at every request."""
        verifier = self.verifier  # empties the cache first if the keys changed
        hit = self._verified.get(token)
        if hit is not None and hit.expires_at > time.time():
            self._verified.move_to_end(token)
            return hit
        verified = verifier.verify(token)  # raises on an invalid token: nothing is kept
        self._verified[token] = verified
        while len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return verified

    # -- authentication of requests ------------------------------------------------------------------------------
    async def authenticate(self, token: str, known: tuple[str, bool] | None = None) -> Identity:
        """The identity of a bearer access token; Unauthorized if it is invalid, expired or its session revoked.
        `known`: (session id, revoked) as this request's rate-limit step read it from Redis a moment ago; for
        another session (or none read) Redis is asked here."""
        try:
            verified = self.verify(token)
        except InvalidToken as error:
            raise Unauthorized(str(error), headers={"WWW-Authenticate": "Bearer"}) from None
        if known is not None and known[0] == verified.session_id:
            revoked = known[1]
        else:
            revoked = await self.sessions.is_revoked(verified.session_id)
        if revoked:
            raise Unauthorized("session revoked", headers={"WWW-Authenticate": "Bearer"})
        return verified.identity()

    # -- login, refresh, logout ----------------------------------------------------------------------------------
    async def login(self, username: str, password: str, totp_code: str | None, address: str) -> Issued:
        await self.events.ready()
        gate = await self.throttle.attempt(username, address)
        if gate.verdict != "go":
            reason = "backoff" if gate.verdict == "wait" else "locked"
            if gate.verdict == "lockout":
                subject = username if gate.locked_scope == "user" else address
                until = time.time_ns() + int(gate.retry_after_s * 1e9)
                await self._publish(
                    events.LoginLockedOut(scope=gate.locked_scope, subject=subject, locked_until=until),
                    ANONYMOUS,
                    address,
                    username,
                )
            await self._failed(username, reason, address)
            raise TooManyAttempts(TOO_MANY, gate.retry_after_s)
        user = await self.users.get(username)
        password_ok = await self.passwords.verify(user.password_hash if user else None, password)
        reason = ""
        if user is None:
            reason = "unknown_user"
        elif not password_ok:
            reason = "bad_credentials"
        elif user.needs_second_factor and not (
            totp_code and await self.second_factor.verify(user.username, user.totp_secret, totp_code)
        ):
            reason = "bad_second_factor"
        elif user.disabled:
            reason = "disabled"
        if user is None or reason:
            await self._failed(username, reason, address)
            raise Unauthorized(LOGIN_FAILED)
        method = "password+totp" if user.needs_second_factor else "password"
        session, refresh = await self.sessions.create(user.username, method)
        await self._publish_or_undo(
            events.LoginSucceeded(username=user.username, session_id=session.session_id, method=method),
            f"user:{user.username}",
            address,
            user.username,
            undo=lambda: self.sessions.revoke(session.session_id),  # no token of it has left
        )
        await self.throttle.succeeded(username, address)
        if self.passwords.needs_rehash(user.password_hash):  # the cost was raised since this hash was made
            await self.users.set_password_hash(user.username, await self.passwords.hash(password))
        return self._issue(user.username, user.roles, session.session_id, refresh)

    async def refresh(self, refresh_token: str, address: str) -> Issued:
        outcome, session, new_token = await self.sessions.refresh(refresh_token)
        if outcome == "replayed" and session is not None:
            log.warning("refresh token replayed: session revoked", session_id=session.session_id)
            await self._publish(
                events.SessionRevoked(
                    username=session.username, session_id=session.session_id, reason="refresh_replayed"
                ),
                ANONYMOUS,
                address,
                session.username,
            )
        if outcome != "rotated" or session is None:
            await self._failed(session.username if session else "", "bad_refresh_token", address)
            raise Unauthorized("invalid refresh token")
        user = await self.users.get(session.username)
        if user is None or user.disabled:
            await self.sessions.revoke(session.session_id)
            raise Unauthorized("invalid refresh token")
        return self._issue(user.username, user.roles, session.session_id, new_token)

    async def logout(self, identity: Identity | None, refresh_token: str | None, address: str) -> list[str]:
        """End the session of the bearer token and/or of the refresh token. Returns the revoked session ids."""
        sids = set()
        if identity is not None and identity.session_id:
            sids.add(identity.session_id)
        if refresh_token:
            outcome_sid = refresh_token.partition(".")[0]
            if await self.sessions.owns(refresh_token, outcome_sid):
                sids.add(outcome_sid)
        if not sids:
            raise Unauthorized("nothing to log out: send the access token or the current refresh token")
        await self.events.ready()
        for sid in sorted(sids):
            username = await self.sessions.revoke(sid)
            actor = identity.actor if identity else f"user:{username}"
            await self._publish(
                events.SessionRevoked(username=username or "", session_id=sid, reason="logout"),
                actor,
                address,
                username or "",
            )
        return sorted(sids)

    async def exchange_api_key(self, presented: str, address: str) -> Issued:
        await self.events.ready()
        gate = await self.throttle.attempt(None, address)  # guessing keys is hopeless, but flooding is throttled
        if gate.verdict != "go":
            raise TooManyAttempts(TOO_MANY, gate.retry_after_s)
        key = await self.apikeys.authenticate(presented)
        owner = await self.users.get(key.owner) if key else None
        roles = key.roles & owner.roles if key and owner else frozenset()
        if key is None or owner is None or owner.disabled or not roles:
            await self._failed(key.owner if key else "", "bad_api_key", address)
            raise Unauthorized("invalid API key")
        sid = apikeys_module.session_id(key.key_id)
        ttl = int(min(self.config.access_token_ttl_s, key.expires_at - time.time()))
        if ttl < 1:
            raise Unauthorized("invalid API key")
        await self._publish(  # the token is made only once the exchange is recorded
            events.LoginSucceeded(username=owner.username, session_id=sid, method="api_key", api_key_id=key.key_id),
            f"user:{owner.username}",
            address,
            owner.username,
        )
        await self.throttle.succeeded(None, address)
        return self._issue(owner.username, roles, sid, None, ttl)

    def _issue(
        self, username: str, roles: frozenset[str], sid: str, refresh: str | None, ttl_s: int | None = None
    ) -> Issued:
        ttl = ttl_s or self.config.access_token_ttl_s
        token = self.keys.issue(username, roles, sid, ttl)
        return Issued(token, ttl, sid, username, roles, refresh)

    # -- the first admin -----------------------------------------------------------------------------------------
    async def bootstrap(self, secret: str, username: str, password: str, address: str) -> Enrolment:
        await self.events.ready()
        gate = await self.throttle.attempt(None, address)
        if gate.verdict != "go":
            raise TooManyAttempts(TOO_MANY, gate.retry_after_s)
        self._check_password(username, password)
        if not await asyncio.to_thread(self.bootstrap_secret.matches, secret):
            await self._failed(username, "bad_bootstrap_secret", address)
            raise Unauthorized("bootstrap refused: no such bootstrap secret (it is used once)")
        claim = f"{self.config.redis_prefix}bootstrap:consumed"
        claimed = await self.redis.set(claim, username, nx=True)
        if not claimed:
            raise Gone("the bootstrap secret was used already")
        try:
            user = await self.users.create(username, await self.passwords.hash(password), frozenset({ADMIN}))
        except BaseException:
            await asyncio.to_thread(self.bootstrap_secret.destroy)
            raise

        async def undo() -> None:  # no admin, the claim released: the secret (kept) works again
            await self.users.delete(username)
            await self.redis.delete(claim)

        await self._publish_or_undo(
            events.AdminBootstrapped(username=username), f"user:{username}", address, username, undo=undo
        )
        await asyncio.to_thread(self.bootstrap_secret.destroy)
        await self.throttle.succeeded(None, address)
        return Enrolment(user, None, self._totp_uri(user))

    # -- admin: users ------------------------------------------------------------------------------------------
    async def create_user(
        self, actor: Identity, username: str, roles: list[str], password: str | None, address: str
    ) -> Enrolment:
        role_set = self._roles(roles)
        generated = password is None
        password = password or generate_password()
        self._check_password(username, password)
        await self.events.ready()
        try:
            user = await self.users.create(username, await self.passwords.hash(password), role_set)
        except UserExistsError:
            raise Conflict(f"user {username!r} exists", field="username") from None
        await self._publish_or_undo(
            events.UserCreated(username=username, roles=sorted(role_set)),
            actor.actor,
            address,
            username,
            undo=lambda: self.users.delete(username),
        )
        return Enrolment(user, password if generated else None, self._totp_uri(user))

    async def user(self, username: str) -> User:
        user = await self.users.get(username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        return user

    async def set_disabled(self, actor: Identity, username: str, disabled: bool, address: str) -> User:
        current = await self.user(username)
        if disabled and ADMIN in current.roles:
            await self._keep_an_admin(username)
        await self.events.ready()
        user = await self.users.set_disabled(username, disabled)
        if disabled:
            sids = await self._session_ids(username)
            await self._publish_or_undo(
                events.UserDisabled(username=username, revoked_session_ids=sids),
                actor.actor,
                address,
                username,
                undo=lambda: self.users.restore(current),
            )
            await self._revoke_user(actor, username, "user_disabled", address)
        else:
            await self._publish_or_undo(
                events.UserEnabled(username=username),
                actor.actor,
                address,
                username,
                undo=lambda: self.users.restore(current),
            )
        return user

    async def reset(self, actor: Identity, username: str, password: str | None, address: str) -> Enrolment:
        current = await self.user(username)
        generated = password is None
        password = password or generate_password()
        self._check_password(username, password)
        await self.events.ready()
        user = await self.users.reset(username, await self.passwords.hash(password))
        sids = await self._session_ids(username)
        await self._publish_or_undo(
            events.UserReset(username=username, revoked_session_ids=sids),
            actor.actor,
            address,
            username,
            undo=lambda: self.users.restore(current),  # the old password and authenticator work again
        )
        await self.throttle.clear(username)
        await self._revoke_user(actor, username, "user_reset", address)
        return Enrolment(user, password if generated else None, self._totp_uri(user))

    # -- admin: roles ------------------------------------------------------------------------------------------
    async def grant(self, actor: Identity, username: str, role: str, address: str) -> User:
        user = await self.user(username)
        self._roles([role])
        if role in user.roles:
            return user
        await self.events.ready()
        current = user
        user = await self.users.set_roles(username, user.roles | {role})
        await self._publish_or_undo(
            events.RoleGranted(username=username, role=role),
            actor.actor,
            address,
            username,
            undo=lambda: self.users.set_roles(username, current.roles),
        )
        return user

    async def revoke_role(self, actor: Identity, username: str, role: str, address: str) -> User:
        user = await self.user(username)
        if role not in user.roles:
            raise NotFound(f"user {username!r} does not hold role {role!r}")
        if role == ADMIN:
            await self._keep_an_admin(username)
        await self.events.ready()
        current = user
        user = await self.users.set_roles(username, user.roles - {role})
        # Tokens carry roles: the user's sessions end, so the role is gone now, not at the tokens' expiry.
        sids = await self._session_ids(username)
        await self._publish_or_undo(
            events.RoleRevoked(username=username, role=role, revoked_session_ids=sids),
            actor.actor,
            address,
            username,
            undo=lambda: self.users.set_roles(username, current.roles),
        )
        await self._revoke_user(actor, username, "role_revoked", address)
        return user

    # -- admin: sessions ---------------------------------------------------------------------------------------
    async def revoke_session(self, actor: Identity, session_id: str, address: str) -> None:
        session = await self.sessions.get(session_id)
        if session is None:
            raise NotFound(f"no session {session_id!r}")
        await self.events.ready()
        await self._publish(  # recorded first: a revocation is never undone
            events.SessionRevoked(username=session.username, session_id=session_id, reason="admin"),
            actor.actor,
            address,
            session.username,
        )
        await self.sessions.revoke(session_id)

    async def _session_ids(self, username: str) -> list[str]:
        return [session.session_id for session in await self.sessions.of_user(username)]

    async def _revoke_user(self, actor: Identity, username: str, reason: str, address: str) -> list[str]:
        """End the user's sessions after the change that ends them was recorded (it lists them): each one's own
        SessionRevoked follows, and one that cannot be published is logged, not a reason to keep a session."""
        revoked = await self.sessions.revoke_user(username)
        for sid in revoked:
            try:
                await self._publish(
                    events.SessionRevoked(username=username, session_id=sid, reason=reason),
                    actor.actor,
                    address,
                    username,
                )
            except BusUnavailable:
                log.warning("session revoked; its own event not published", session_id=sid, reason=reason)
        return revoked

    # -- admin: API keys ---------------------------------------------------------------------------------------
    async def create_api_key(
        self, actor: Identity, name: str, owner: str, roles: list[str], ttl_s: int, address: str
    ) -> tuple[apikeys_module.ApiKey, str]:
        role_set = self._roles(roles)
        if ttl_s > self.config.api_key_max_ttl_s:
            raise InvalidField(
                f"expires_in_s: at most {self.config.api_key_max_ttl_s} (TRADING_GATEWAY__API_KEY_MAX_TTL_S)",
                field="expires_in_s",
            )
        user = await self.users.get(owner)
        if user is None:
            raise InvalidField(f"owner: no user {owner!r}", field="owner")
        missing = sorted(role_set - user.roles)
        if missing:
            raise InvalidField(f"roles: {owner} does not hold {', '.join(missing)}", field="roles")
        await self.events.ready()
        key, plain = await self.apikeys.create(name, owner, role_set, ttl_s, actor.actor)
        await self._publish_or_undo(
            events.ApiKeyCreated(
                key_id=key.key_id,
                name=name,
                owner=owner,
                roles=sorted(role_set),
                expires_at=int(key.expires_at * 1e9),
            ),
            actor.actor,
            address,
            owner,
            undo=lambda: self.apikeys.revoke(key.key_id),  # the key was never shown
        )
        return key, plain

    async def revoke_api_key(self, actor: Identity, key_id: str, address: str) -> apikeys_module.ApiKey:
        key = await self.apikeys.get(key_id)
        if key is None:
            raise NotFound(f"no API key {key_id!r}")
        await self.events.ready()
        # recorded first: a revocation is never undone
        await self._publish(events.ApiKeyRevoked(key_id=key_id, owner=key.owner), actor.actor, address, key.owner)
        await self.apikeys.revoke(key_id)
        # Access tokens already exchanged for it are refused from now on.
        await self.sessions.revoke(apikeys_module.session_id(key_id))
        return key

    # -- signing keys ------------------------------------------------------------------------------------------
    async def rotate_signing_key(self, actor: str, address: str) -> tuple[str, str]:
        await self.events.ready()
        previous = await asyncio.to_thread(self.keys.rotate)
        current = self.keys.current.kid
        await self._publish(events.SigningKeyRotated(kid=current, previous_kid=previous), actor, address, current)
        return current, previous

    async def rotate_if_due(self) -> None:
        previous = await asyncio.to_thread(self.keys.rotate_if_due)
        if previous is not None:
            current = self.keys.current.kid
            log.info("signing key rotated", kid=current, previous_kid=previous)
            await self._publish(
                events.SigningKeyRotated(kid=current, previous_kid=previous), "service:gateway", "", current
            )

    # -- helpers -----------------------------------------------------------------------------------------------
    def _totp_uri(self, user: User) -> str:
        return provisioning_uri(user.totp_secret, user.username, self.config.totp_issuer)

    def _check_password(self, username: str, password: str) -> None:
        if len(password) < self.config.password_min_length:
            raise InvalidField(f"password: at least {self.config.password_min_length} characters", field="password")
        if username.lower() in password.lower():
            raise InvalidField("password: must not contain the username", field="password")

    @staticmethod
    def _roles(roles: list[str]) -> frozenset[str]:
        try:
            return check_roles(roles)
        except ValueError as error:
            raise InvalidField(str(error), field="roles") from None

    async def _keep_an_admin(self, username: str) -> None:
        others = [u for u in await self.users.all() if u.username != username and ADMIN in u.roles and not u.disabled]
        if not others:
            raise Forbidden(f"{username} is the last enabled admin")

    async def _failed(self, username: str, reason: str, address: str) -> None:
        await self._publish(events.LoginFailed(username=username, reason=reason), ANONYMOUS, address, username)

    async def _publish_or_undo(
        self, event: object, actor: str, address: str, key: str, *, undo: Callable[[], Awaitable[object]]
    ) -> None:
        """Publish the change's event; when the bus does not take it, undo the change and answer BusUnavailable."""
        try:
            await self._publish(event, actor, address, key)
        except BusUnavailable:
            await undo()
            raise

    async def _publish(self, event: object, actor: str, address: str, key: str) -> None:
        await self.events.publish(event, actor=actor, client_address=address, key=key or "_anonymous")  # type: ignore[arg-type]
