"""API keys for scripts and CI, in Redis: owned by a user, scoped to roles, expiring, revocable.

A key is `tpk_<key id>_<secret>`; only the SHA-256 of the secret is stored (the key is 256 random bits, so a fast
hash is enough). It is exchanged at `POST /api/v1/auth/token` for an access token whose session id is
`key-<key id>`: revoking the key sets that session's revocation key, so its outstanding access tokens die too. The
roles a token gets are the key's roles that its owner still holds.

Keys (under the gateway's prefix): `apikey:<key id>` a hash (expires with the key), `apikeys` the set of ids.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

KEY_PATTERN = re.compile(r"^tpk_([0-9a-f]{16})_([A-Za-z0-9_-]{40,64})$")


def session_id(key_id: str) -> str:
    return f"key-{key_id}"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    owner: str
    roles: frozenset[str]
    created_at: float
    expires_at: float
    created_by: str
    secret_hash: str

    def public(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "owner": self.owner,
            "roles": sorted(self.roles),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "created_by": self.created_by,
        }


class ApiKeyStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, key_id: str) -> str:
        return f"{self.prefix}apikey:{key_id}"

    async def create(
        self, name: str, owner: str, roles: frozenset[str], ttl_s: int, created_by: str
    ) -> tuple[ApiKey, str]:
        """A new key; the plain key is returned once and never stored."""
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        key = ApiKey(
            key_id, name, owner, roles, now, now + ttl_s, created_by, hashlib.sha256(secret.encode()).hexdigest()
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key(key_id),
                mapping={
                    "name": name,
                    "owner": owner,
                    "roles": json.dumps(sorted(roles)),
                    "created_at": repr(now),
                    "expires_at": repr(key.expires_at),
                    "created_by": created_by,
                    "secret_hash": key.secret_hash,
                },
            )
            pipe.expireat(self._key(key_id), int(key.expires_at) + 1)
            pipe.sadd(f"{self.prefix}apikeys", key_id)
            await pipe.execute()
        return key, f"tpk_{key_id}_{secret}"

    async def get(self, key_id: str) -> ApiKey | None:
        data = await self.redis.hgetall(self._key(key_id))
        if not data:
            return None
        return ApiKey(
            key_id,
            str(data["name"]),
            str(data["owner"]),
            frozenset(json.loads(data["roles"])),
            float(data["created_at"]),
            float(data["expires_at"]),
            str(data["created_by"]),
            str(data["secret_hash"]),
        )

    async def authenticate(self, presented: str) -> ApiKey | None:
        """The key if `presented` is a live key (well-formed, known, secret matches, not expired), else None."""
        match = KEY_PATTERN.match(presented)
        if match is None:
            return None
        key = await self.get(match.group(1))
        digest = hashlib.sha256(match.group(2).encode()).hexdigest()
        if key is None or not hmac.compare_digest(key.secret_hash, digest):
            return None
        if key.expires_at <= time.time():
            return None
        return key

    async def all(self) -> list[ApiKey]:
        ids = sorted(str(key_id) for key_id in await self.redis.smembers(f"{self.prefix}apikeys"))
        keys = []
        for key_id in ids:
            key = await self.get(key_id)
            if key is None or key.expires_at <= time.time():  # expired: Redis dropped (or drops) the record
                await self.redis.srem(f"{self.prefix}apikeys", key_id)
                continue
            keys.append(key)
        return keys

    async def revoke(self, key_id: str) -> ApiKey | None:
        key = await self.get(key_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(key_id))
            pipe.srem(f"{self.prefix}apikeys", key_id)
            await pipe.execute()
        return key
