"""Rate limits on every route: per user (the verified bearer token's subject) and per client address, and a stricter
one per address on the auth writes (login, refresh, logout, API-key exchange, bootstrap), in Redis.

The limits are written in the `limits` library's notation (`30/second;1200/minute`, parsed by it; every item
applies) and counted in fixed windows. All the limits of one request are checked and counted in one Lua step, one
Redis round trip (the library's strategies take two per limit, a hit and then the window's stats for the headers,
and a request here meets four to six limits). A request is counted only if every limit has room, so a refused one
spends nothing. The address is the one the connection came from, or the `X-Forwarded-For` of a proxy named in
TRUSTED_PROXIES (uvicorn sets it, as for the login throttle).

Every answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds) of the limit nearest
exhaustion; past it: `429 application/problem+json` with `Retry-After`. Redis unreachable: the auth routes and every
write answer `503` with `Retry-After` (nothing is done: fail closed); reads (GET, HEAD, OPTIONS) are served without
a limit (logged), since every authenticated read still needs Redis for its revocation check and fails closed
there, while liveness, the JWKS and the dashboard's files keep answering.

Keys (under the gateway's prefix): `rl:<scope>:<sha256 of the subject>:<seconds>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any

import limits
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from trading_platform.observability import get_logger
from trading_platform.tokens import revoked_key

from gateway_service.config import GatewayConfig
from gateway_service.problems import problem_response

log = get_logger("gateway")

# KEYS: one counter per limit, then (for a request with a valid token) its session's revocation key. ARGV: per limit
# its amount, then its window in ms. Returns {index of the first limit without room (0 = none), then per limit:
# count, ms until its window ends, then (with a revocation key) 1 if the session is revoked, else 0}.
WINDOW_SCRIPT = """
local limits = #ARGV / 2
local out = {0}
for i = 1, limits do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then count = 0; ttl = tonumber(ARGV[i * 2]) end
  if out[1] == 0 and count + 1 > tonumber(ARGV[i * 2 - 1]) then out[1] = i end
  out[i * 2] = count
  out[i * 2 + 1] = ttl
end
if out[1] == 0 then
  for i = 1, limits do
    local n = redis.call('INCR', KEYS[i])
    if n == 1 or redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[i * 2]) end
    out[i * 2] = n
  end
end
if #KEYS > limits then out[limits * 2 + 2] = redis.call('EXISTS', KEYS[limits + 1]) end
return out
"""
# Where the limiter leaves what it read of the request's session (request.state): (session id, revoked), for
# `authorize`, so a read's limits and its revocation check are one Redis round trip.
SESSION_STATE = "session_revoked"

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUTH_PREFIX = "/api/v1/auth/"
UNAVAILABLE_RETRY_S = 5


@dataclass(frozen=True)
class Limit:
    scope: str  # user, address, auth
    amount: int
    window_s: int

    def describe(self) -> str:
        per = {"user": "per user", "address": "per client address", "auth": "on the auth routes per client address"}
        return f"{self.amount} requests per {self.window_s} s {per[self.scope]}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: Limit  # the refusing limit, or the one with the least room left
    remaining: int
    reset_s: int
    revoked: bool | None = None  # the session's revocation, when one was asked

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit.amount),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }


def parse(scope: str, value: str) -> list[Limit]:
    return [Limit(scope, item.amount, int(item.get_expiry())) for item in limits.parse_many(value)]


class EngineAbsent(Exception):
    """The app has no engine attached (not started yet, or stopped)."""


class RateLimiter:
    """The limits of one gateway config, counted in its Redis."""

    def __init__(self, redis: Redis, config: GatewayConfig) -> None:
        self.redis = redis
        self.prefix = f"{config.redis_prefix}rl:"
        self.user = parse("user", config.rate_limit_user)
        self.address = parse("address", config.rate_limit_address)
        self.auth = parse("auth", config.rate_limit_auth)
        self.script = redis.register_script(WINDOW_SCRIPT)
        self.timeout_s = config.rate_limit_timeout_s

    def _key(self, limit: Limit, subject: str) -> str:
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
        return f"{self.prefix}{limit.scope}:{digest}:{limit.window_s}"

    async def check(self, user: str | None, address: str, auth_route: bool, session_id: str | None = None) -> Decision:
        """Count one request of `user` (None: anonymous) from `address`, if every limit it meets has room; with a
        `session_id`, read its revocation in the same step."""
        applied = [(limit, address) for limit in self.address]
        if user is not None:
            applied += [(limit, user) for limit in self.user]
        if auth_route:
            applied += [(limit, address) for limit in self.auth]
        keys = [self._key(limit, subject) for limit, subject in applied]
        args: list[int] = []
        for limit, _ in applied:
            args += [limit.amount, limit.window_s * 1000]
        if session_id is not None:
            keys.append(revoked_key(session_id))
        async with asyncio.timeout(self.timeout_s):
            out = [int(value) for value in await self.script(keys=keys, args=args)]
        refused = out[0]
        revoked = bool(out[len(applied) * 2 + 1]) if session_id is not None else None
        rooms = [
            (limit.amount - out[i * 2 + 1], math.ceil(out[i * 2 + 2] / 1000), limit)
            for i, (limit, _) in enumerate(applied)
        ]
        if refused:
            _, reset_s, limit = rooms[refused - 1]
            return Decision(False, limit, 0, max(1, reset_s), revoked)
        remaining, reset_s, limit = min(rooms, key=lambda room: (room[0], -room[1]))
        return Decision(True, limit, max(0, remaining), max(1, reset_s), revoked)


class RateLimitMiddleware:
    """ASGI middleware: the engine's limits on every HTTP request (the engine is app.state.engine, attached once the
    gateway has started; before that, reads pass and writes are refused like with Redis away)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._limiter: tuple[int, RateLimiter] | None = None
        self._redis_warned_at = 0.0

    def _limiter_for(self, engine: Any) -> RateLimiter:
        if self._limiter is None or self._limiter[0] != id(engine):
            self._limiter = (id(engine), RateLimiter(engine.redis, engine.config))
        return self._limiter[1]

    def _token(self, engine: Any, scope: Scope) -> Any:
        """The valid bearer token's claims (signature and expiry, checked once per token by `Engine.verify`; a
        revoked one is refused later, by authorize, from what the limits' step read), or None."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                kind, _, token = value.decode("latin-1").partition(" ")
                if kind.lower() != "bearer" or not token.strip():
                    return None
                try:
                    return engine.verify(token.strip())
                except Exception:  # invalid, expired, unknown key: counted as its address only
                    return None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"].upper()
        guarded = method in WRITE_METHODS or scope["path"].startswith(AUTH_PREFIX)
        engine = getattr(scope["app"].state, "engine", None) if "app" in scope else None
        try:
            if engine is None:
                raise EngineAbsent("the gateway engine is not attached")
            client = scope.get("client")
            verified = self._token(engine, scope)
            decision = await self._limiter_for(engine).check(
                str(verified.identity().actor) if verified is not None else None,
                client[0] if client else "",
                method != "GET" and scope["path"].startswith(AUTH_PREFIX),
                verified.session_id if verified is not None else None,
            )
        except (RedisError, OSError, TimeoutError, EngineAbsent) as error:
            if guarded:
                await self._unavailable(scope, receive, send, error)
                return
            self._warn(error)
            await self.app(scope, receive, send)
            return
        if not decision.allowed:
            log.warning("rate limited", path=scope["path"], scope=decision.limit.scope, limit=decision.limit.describe())
            response = problem_response(
                429,
                "too many requests",
                f"rate limit exceeded: at most {decision.limit.describe()}; retry after {decision.reset_s} s",
                headers={"Retry-After": str(decision.reset_s), **decision.headers()},
            )
            await response(scope, receive, send)
            return
        if verified is not None:
            scope.setdefault("state", {})[SESSION_STATE] = (verified.session_id, bool(decision.revoked))
        extra = [(name.lower().encode(), value.encode()) for name, value in decision.headers().items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _unavailable(self, scope: Scope, receive: Receive, send: Send, error: BaseException) -> None:
        log.error("rate limits cannot be checked: refused", path=scope["path"], error=type(error).__name__)
        response = problem_response(
            503,
            "service unavailable",
            "the rate limits cannot be checked right now: nothing was done; try again shortly",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_S)},
        )
        await response(scope, receive, send)

    def _warn(self, error: BaseException) -> None:
        now = time.monotonic()
        if now - self._redis_warned_at >= 10:
            self._redis_warned_at = now
            log.warning("rate limits cannot be checked: reads served without them", error=type(error).__name__)
