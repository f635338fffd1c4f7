"""Users of record in Redis: password hash (Argon2id), TOTP secret, roles, disabled flag.

Keys (under the gateway's prefix): `user:<username>` a hash, `users` the set of usernames. Secrets never leave this
module except the TOTP secret at enrolment (returned once to whoever created or reset the user).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pyotp
from redis.asyncio import Redis
from trading_platform.identity import READ_ONLY_ROLES, ROLES

# The name is claimed and the record written in one step: no half-created user, no two creators of one name.
CREATE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""


def users_key(prefix: str) -> str:
    """The set of every username."""
    return f"{prefix}users"


class UserExistsError(ValueError):
    pass


class UnknownUserError(KeyError):
    def __str__(self) -> str:
        return f"no user {self.args[0]!r}"


@dataclass(frozen=True)
class User:
    username: str
    password_hash: str
    totp_secret: str
    roles: frozenset[str]
    disabled: bool
    created_at: float

    @property
    def needs_second_factor(self) -> bool:
        """Every role but viewer can change something, so it needs TOTP."""
        return not self.roles <= READ_ONLY_ROLES

    def public(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "roles": sorted(self.roles),
            "disabled": self.disabled,
            "created_at": self.created_at,
        }


def check_roles(roles: list[str] | set[str] | frozenset[str]) -> frozenset[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}: known roles are {', '.join(ROLES)}")
    return frozenset(roles)


class UserStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, username: str) -> str:
        return f"{self.prefix}user:{username}"

    async def get(self, username: str) -> User | None:
        data = await self.redis.hgetall(self._key(username))
        if not data:
            return None
        return User(
            username=username,
            password_hash=str(data["password_hash"]),
            totp_secret=str(data["totp_secret"]),
            roles=frozenset(json.loads(data["roles"])),
            disabled=data["disabled"] == "1",
            created_at=float(data["created_at"]),
        )

    async def require(self, username: str) -> User:
        user = await self.get(username)
        if user is None:
            raise UnknownUserError(username)
        return user

    async def create(self, username: str, password_hash: str, roles: frozenset[str]) -> User:
        """A new user with a fresh TOTP secret. Raises UserExistsError if the name is taken."""
        user = User(username, password_hash, pyotp.random_base32(), check_roles(roles), False, time.time())
        fields = {
            "password_hash": user.password_hash,
            "totp_secret": user.totp_secret,
            "roles": json.dumps(sorted(user.roles)),
            "disabled": "0",
            "created_at": repr(user.created_at),
        }
        created = await self.redis.eval(  # type: ignore[misc]
            CREATE_SCRIPT, 2, self._key(username), users_key(self.prefix), username, *sum(fields.items(), ())
        )
        if not created:
            raise UserExistsError(f"user {username!r} exists")
        return user

    async def all(self) -> list[User]:
        names = sorted(str(name) for name in await self.redis.smembers(users_key(self.prefix)))
        users = [await self.get(name) for name in names]
        return [user for user in users if user is not None]

    async def set_disabled(self, username: str, disabled: bool) -> User:
        await self.require(username)
        await self.redis.hset(self._key(username), "disabled", "1" if disabled else "0")
        return await self.require(username)

    async def set_roles(self, username: str, roles: frozenset[str]) -> User:
        await self.require(username)
        await self.redis.hset(self._key(username), "roles", json.dumps(sorted(check_roles(roles))))
        return await self.require(username)

    async def reset(self, username: str, password_hash: str) -> User:
        """A new password and a new TOTP secret (the old authenticator stops working)."""
        await self.require(username)
        await self.redis.hset(
            self._key(username), mapping={"password_hash": password_hash, "totp_secret": pyotp.random_base32()}
        )
        return await self.require(username)

    async def delete(self, username: str) -> None:
        """Remove the user (undoes a create whose event could not be recorded)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(username))
            pipe.srem(users_key(self.prefix), username)
            await pipe.execute()

    async def restore(self, user: User) -> None:
        """Put back a user's password, TOTP secret, roles and state as they were (undoes a change not recorded)."""
        await self.redis.hset(
            self._key(user.username),
            mapping={
                "password_hash": user.password_hash,
                "totp_secret": user.totp_secret,
                "roles": json.dumps(sorted(user.roles)),
                "disabled": "1" if user.disabled else "0",
            },
        )

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        await self.redis.hset(self._key(username), "password_hash", password_hash)
