"""Failed logins back off, then lock out: per username and per client address, in Redis.

Each attempt is counted before its password is checked (so parallel guesses cannot slip past the limit between
check and count), in one Lua step over both scopes. After `backoff_after` attempts without a success in the window,
each further attempt must wait `backoff_base_ms * 2^k` (capped) after the previous one; after `lockout_after`, the
username (or address) is locked for `lockout_s`, whatever password comes. A success clears the username's count and
is taken back from the address's (an address is locked for its failures, not for its users' logins). Usernames are
counted whether or not they exist, so the answers never tell which exist. API-key exchanges and the bootstrap are
counted per address only.

Keys (under the gateway's prefix): `login:<scope>:<subject>:count`, `:wait`, `:lock`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

# KEYS: per scope count, wait, lock. ARGV: window_ms, then per scope backoff_after, lockout_after, lock_ms, base_ms,
# max_ms. Returns {verdict, retry_after_ms, locked scope index (0 = none)}.
GATE_SCRIPT = """
local scopes = #KEYS / 3
for i = 0, scopes - 1 do
  local lock = redis.call('PTTL', KEYS[i * 3 + 3])
  if lock > 0 then return {'locked', lock, 0} end
end
for i = 0, scopes - 1 do
  local wait = redis.call('PTTL', KEYS[i * 3 + 2])
  if wait > 0 then return {'wait', wait, 0} end
end
local window = tonumber(ARGV[1])
for i = 0, scopes - 1 do
  local base = i * 5 + 1
  local backoff_after = tonumber(ARGV[base + 1])
  local lockout_after = tonumber(ARGV[base + 2])
  local lock_ms = tonumber(ARGV[base + 3])
  local n = redis.call('INCR', KEYS[i * 3 + 1])
  if n == 1 then redis.call('PEXPIRE', KEYS[i * 3 + 1], window) end
  if n > lockout_after then
    redis.call('SET', KEYS[i * 3 + 3], '1', 'PX', lock_ms)
    redis.call('DEL', KEYS[i * 3 + 1], KEYS[i * 3 + 2])
    return {'lockout', lock_ms, i + 1}
  end
  if n > backoff_after then
    local delay = math.min(tonumber(ARGV[base + 4]) * 2 ^ (n - backoff_after - 1), tonumber(ARGV[base + 5]))
    redis.call('SET', KEYS[i * 3 + 2], '1', 'PX', math.floor(delay))
  end
end
return {'go', 0, 0}
"""

# A good attempt is taken back from the address's count (never below zero), and the wait it set is lifted.
RELEASE_SCRIPT = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
redis.call('DEL', KEYS[2])
return 1
"""

Verdict = Literal["go", "wait", "locked", "lockout"]
VERDICTS: dict[str, Verdict] = {"go": "go", "wait": "wait", "locked": "locked", "lockout": "lockout"}


@dataclass(frozen=True)
class Limits:
    backoff_after: int
    lockout_after: int
    lockout_s: int
    backoff_base_ms: int
    backoff_max_ms: int


@dataclass(frozen=True)
class Gate:
    verdict: Verdict  # go: check the password; wait: too soon; locked: already locked; lockout: this attempt locked
    retry_after_s: float
    locked_scope: str = ""  # "user" or "address" on a lockout


class LoginThrottle:
    def __init__(self, redis: Redis, prefix: str, window_s: int, user: Limits, address: Limits) -> None:
        self.redis = redis
        self.prefix = prefix
        self.window_s = window_s
        self.limits = {"user": user, "address": address}

    def _keys(self, scope: str, subject: str) -> list[str]:
        # Hashed: a username or address of any length or bytes makes a bounded, safe key.
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
        base = f"{self.prefix}login:{scope}:{digest}"
        return [f"{base}:count", f"{base}:wait", f"{base}:lock"]

    def _scopes(self, username: str | None, address: str) -> list[tuple[str, str]]:
        return ([("user", username.lower())] if username is not None else []) + [("address", address)]

    async def attempt(self, username: str | None, address: str) -> Gate:
        """Count one attempt (for the username, when there is one, and the address); tells whether its credential
        may be checked."""
        scopes = self._scopes(username, address)
        keys: list[str] = []
        args: list[int] = [self.window_s * 1000]
        for scope, subject in scopes:
            limits = self.limits[scope]
            keys += self._keys(scope, subject)
            args += [
                limits.backoff_after,
                limits.lockout_after,
                limits.lockout_s * 1000,
                limits.backoff_base_ms,
                limits.backoff_max_ms,
            ]
        verdict, retry_ms, scope_index = await self.redis.eval(GATE_SCRIPT, len(keys), *keys, *args)  # type: ignore[misc]
        locked = scopes[int(scope_index) - 1][0] if int(scope_index) else ""
        return Gate(VERDICTS[str(verdict)], int(retry_ms) / 1000, locked)

    async def succeeded(self, username: str | None, address: str) -> None:
        """The attempt was good: the username starts afresh, and the address's count takes it back (an address
        is locked out for its failures, not for its users' logins)."""
        count, wait, _ = self._keys("address", address)
        async with self.redis.pipeline(transaction=True) as pipe:
            if username is not None:
                pipe.delete(*self._keys("user", username.lower())[:2])
            pipe.eval(RELEASE_SCRIPT, 2, count, wait)
            await pipe.execute()

    async def clear(self, username: str) -> None:
        """An admin's reset lifts the username's lockout."""
        await self.redis.delete(*self._keys("user", username.lower()))
