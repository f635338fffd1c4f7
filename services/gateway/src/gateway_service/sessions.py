"""Sessions and their refresh tokens, in Redis.

A refresh token is opaque: `<session id>.<random>`; only its SHA-256 is stored. Each refresh replaces it (rotation)
and remembers the used one: presenting a used refresh token again (a stolen copy, or the thief's after the owner
refreshed) revokes the whole session. A session ends `session_max_s` after login, or `refresh_token_ttl_s` after
its last refresh, or when revoked (logout, an admin, a replay). Revoking sets the contract's key
`identity:revoked:<sid>` so every service refuses the session's access tokens at once.

Keys (under the gateway's prefix): `session:<sid>` a hash (username, current refresh hash, created/expiry times),
`session:<sid>:used` the set of used refresh hashes, `user-sessions:<username>` the user's session ids.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis
from trading_platform.tokens import revoked_key  # the contract: verifiers refuse a token whose sid has this key

REVOCATION_MARGIN_S = 60  # the revocation key outlives the last access token of the session by this much

RefreshOutcome = Literal["rotated", "replayed", "invalid"]

# The current hash moves to the used set and the new one takes its place in one step, so two refreshes racing with
# the same token cannot both succeed: the second sees a used token (a replay) and the session is revoked.
ROTATE_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'refresh_hash')
if not current then return 'invalid' end
if current == ARGV[1] then
  redis.call('HSET', KEYS[1], 'refresh_hash', ARGV[2], 'refreshed_at', ARGV[3])
  redis.call('SADD', KEYS[2], ARGV[1])
  local ttl = tonumber(ARGV[4])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  return 'rotated'
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'replayed' end
return 'invalid'
"""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_of(refresh_token: str) -> str | None:
    sid, dot, secret = refresh_token.partition(".")
    if not dot or not secret or len(refresh_token) > 200:
        return None
    try:
        uuid.UUID(hex=sid)
    except ValueError:
        return None
    return sid


@dataclass(frozen=True)
class Session:
    session_id: str
    username: str
    created_at: float
    expires_at: float  # the absolute end (session_max_s after login)
    method: str


class SessionStore:
    def __init__(self, redis: Redis, prefix: str, refresh_ttl_s: int, session_max_s: int, access_ttl_s: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.refresh_ttl_s = refresh_ttl_s
        self.session_max_s = session_max_s
        self.access_ttl_s = access_ttl_s

    def _key(self, sid: str) -> str:
        return f"{self.prefix}session:{sid}"

    def _user_key(self, username: str) -> str:
        return f"{self.prefix}user-sessions:{username}"

    @staticmethod
    def _new_refresh(sid: str) -> str:
        return f"{sid}.{secrets.token_urlsafe(32)}"

    async def create(self, username: str, method: str) -> tuple[Session, str]:
        """A new session and its first refresh token."""
        now = time.time()
        sid = uuid.uuid4().hex
        session = Session(sid, username, now, now + self.session_max_s, method)
        refresh = self._new_refresh(sid)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key(sid),
                mapping={
                    "username": username,
                    "refresh_hash": token_hash(refresh),
                    "created_at": repr(now),
                    "expires_at": repr(session.expires_at),
                    "refreshed_at": repr(now),
                    "method": method,
                },
            )
            pipe.expire(self._key(sid), min(self.refresh_ttl_s, self.session_max_s))
            pipe.sadd(self._user_key(username), sid)
            pipe.expire(self._user_key(username), self.session_max_s)
            await pipe.execute()
        return session, refresh

    async def get(self, sid: str) -> Session | None:
        data = await self.redis.hgetall(self._key(sid))
        if not data or await self.is_revoked(sid):
            return None
        expires_at = float(data["expires_at"])
        if expires_at <= time.time():
            return None
        return Session(sid, str(data["username"]), float(data["created_at"]), expires_at, str(data["method"]))

    async def refresh(self, refresh_token: str) -> tuple[RefreshOutcome, Session | None, str]:
        """Rotate: (rotated, the session, the new refresh token); a used token revokes the session: (replayed, the
        session, ""); anything else: (invalid, None, "")."""
        sid = session_of(refresh_token)
        if sid is None:
            return "invalid", None, ""
        session = await self.get(sid)
        if session is None:
            return "invalid", None, ""
        new = self._new_refresh(sid)
        ttl = int(min(self.refresh_ttl_s, session.expires_at - time.time())) + 1
        outcome = await self.redis.eval(  # type: ignore[misc]
            ROTATE_SCRIPT,
            2,
            self._key(sid),
            self._key(sid) + ":used",
            token_hash(refresh_token),
            token_hash(new),
            repr(time.time()),
            str(max(ttl, 1)),
        )
        if outcome == "rotated":
            return "rotated", session, new
        if outcome == "replayed":
            await self.revoke(sid)
            return "replayed", session, ""
        return "invalid", None, ""

    async def owns(self, refresh_token: str, sid: str) -> bool:
        """Whether refresh_token is the current one of session sid (logout with a refresh token)."""
        data = await self.redis.hget(self._key(sid), "refresh_hash")
        return data is not None and hmac.compare_digest(str(data), token_hash(refresh_token))

    async def revoke(self, sid: str) -> str | None:
        """End the session; its access tokens are refused everywhere from now on. Returns its user (or None)."""
        username = await self.redis.hget(self._key(sid), "username")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(revoked_key(sid), "1", ex=self.access_ttl_s + REVOCATION_MARGIN_S)
            pipe.delete(self._key(sid))
            # The used hashes stay a while: a replay after the revoke is still recognised as one.
            pipe.expire(self._key(sid) + ":used", self.access_ttl_s + REVOCATION_MARGIN_S)
            if username is not None:
                pipe.srem(self._user_key(str(username)), sid)
            await pipe.execute()
        return str(username) if username is not None else None

    async def is_revoked(self, sid: str) -> bool:
        return bool(await self.redis.exists(revoked_key(sid)))

    async def of_user(self, username: str) -> list[Session]:
        sids = [str(sid) for sid in await self.redis.smembers(self._user_key(username))]
        sessions = [await self.get(sid) for sid in sorted(sids)]
        return [session for session in sessions if session is not None]

    async def revoke_user(self, username: str) -> list[str]:
        """End every session of the user (disable, reset, a role revoked); returns the revoked session ids."""
        sids = [str(sid) for sid in await self.redis.smembers(self._user_key(username))]
        for sid in sids:
            await self.revoke(sid)
        return sids
