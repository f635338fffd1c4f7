"""TOTP second factor (pyotp, RFC 6238): codes of the current step and one step either side, each usable once."""

from __future__ import annotations

import hmac
import time

import pyotp
from redis.asyncio import Redis

STEP_S = 30
DRIFT_STEPS = 1  # a code of the previous or next 30 s step is accepted (clock drift, typing time)


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app scans (or the secret typed in)."""
    return pyotp.TOTP(secret, interval=STEP_S).provisioning_uri(name=username, issuer_name=issuer)


class SecondFactor:
    """Verifies codes; a code that was accepted once is refused for the rest of its validity (no replay)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def verify(self, username: str, secret: str, code: str, now: float | None = None) -> bool:
        if not (len(code) == 6 and code.isdigit()):
            return False
        now = time.time() if now is None else now
        totp = pyotp.TOTP(secret, interval=STEP_S)
        step = None
        for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
            if hmac.compare_digest(totp.at(now + offset * STEP_S), code):
                step = totp.timecode(now) + offset
                break
        if step is None:
            return False
        key = f"{self.prefix}totp-used:{username}:{step}"
        claimed = await self.redis.set(key, "1", nx=True, ex=STEP_S * (2 * DRIFT_STEPS + 2))
        return bool(claimed)
