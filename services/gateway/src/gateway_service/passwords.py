"""Password hashing with Argon2id (argon2-cffi), and the same work for a username that does not exist."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hash and verify passwords. `verify(None, password)` checks against a dummy hash made with the same cost, so a
    login for an unknown user takes as long as one for a known user with a wrong password."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(32))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            self.hasher.verify(stored or self.dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None

    async def verify(self, stored: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        return self.hasher.check_needs_rehash(stored)


def generate_password() -> str:
    """A random password for a created or reset user (shown once to the admin)."""
    return secrets.token_urlsafe(18)
