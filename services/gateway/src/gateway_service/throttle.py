"""Failed logins back off, then lock out: per username and per client address, in Redis.

Each attempt is counted before its password is checked (so parallel guesses cannot slip past the limit between
check and count), in one Lua step over both scopes. After `backoff_after` attempts without a success in the window,
each further attempt must wait `backoff_base_ms * 2^k` (capped) after the previous one; after `lockout_after`, the
username (or address) is locked for `lockout_s`, whatever password comes. A success clears the username's count.
Usernames are counted whether or not they exist, so the answers never tell which exist.

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

    async def attempt(self, username: str, address: str) -> Gate:
        """Count one attempt; tells whether its password may be checked."""
        keys = self._keys("user", username.lower()) + self._keys("address", address)
        args: list[int] = [self.window_s * 1000]
        for scope in ("user", "address"):
            limits = self.limits[scope]
            args += [
                limits.backoff_after,
                limits.lockout_after,
                limits.lockout_s * 1000,
                limits.backoff_base_ms,
                limits.backoff_max_ms,
            ]
        verdict, retry_ms, scope_index = await self.redis.eval(GATE_SCRIPT, len(keys), *keys, *args)  # type: ignore[misc]
        return Gate(VERDICTS[str(verdict)], int(retry_ms) / 1000, ("", "user", "address")[int(scope_index)])

    async def succeeded(self, username: str) -> None:
        await self.redis.delete(*self._keys("user", username.lower())[:2])

    async def clear(self, username: str) -> None:
        """An admin's reset lifts the username's lockout."""
        await self.redis.delete(*self._keys("user", username.lower()))
