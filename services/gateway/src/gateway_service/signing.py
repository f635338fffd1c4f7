"""The token signing keys: kept in Vault, rotated, published as JWKS (trading_platform.tokens does the crypto).

Vault KV v2 under the gateway's path:
- `signing`, field `keys`: a JSON list of {kid, private_key (PKCS#8 PEM), created_at, retired_at}, newest last.
  Only the gateway's Vault policy reads it.
- `jwks`, field `jwks`: the public JWKS (a JSON string), current key first, then every retired key whose tokens may
  still be live (retired less than an access-token lifetime ago, plus the verifiers' clock skew). Services verify
  against this copy; the gateway also serves it at /.well-known/jwks.json.

Writes use KV v2 check-and-set on the version read, so two gateway instances rotating at once make one new key: the
loser re-reads and uses the winner's. Every instance re-reads the keys every `key_reload_s`.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import hvac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hvac.exceptions import InvalidPath, InvalidRequest
from trading_platform import tokens

SIGNING = "signing"
JWKS = "jwks"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: float
    retired_at: float | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "private_key": tokens.private_key_pem(self.private_key),
            "created_at": self.created_at,
            "retired_at": self.retired_at,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SigningKey:
        return cls(
            record["kid"],
            tokens.load_private_key_pem(record["private_key"]),
            float(record["created_at"]),
            None if record.get("retired_at") is None else float(record["retired_at"]),
        )


class CheckAndSetConflict(RuntimeError):
    """Another instance wrote the keys between our read and our write."""


class SigningKeys:
    """The current signing key and the retired ones still published. Synchronous (hvac); call from a thread."""

    def __init__(self, client: hvac.Client, mount: str, path: str, access_ttl_s: int, rotation_s: int) -> None:
        self.client = client
        self.mount = mount
        self.path = path
        self.access_ttl_s = access_ttl_s
        self.rotation_s = rotation_s
        self.keys: list[SigningKey] = []
        self.version = 0  # the KV version the keys were read at (changes with every rotation or pruning)

    # -- Vault ---------------------------------------------------------------------------------------------------
    def _read(self) -> tuple[list[SigningKey], int]:
        try:
            response = self.client.secrets.kv.v2.read_secret_version(
                path=f"{self.path}/{SIGNING}", mount_point=self.mount, raise_on_deleted_version=True
            )
        except InvalidPath:
            return [], 0
        records = json.loads(response["data"]["data"]["keys"])
        return [SigningKey.from_record(record) for record in records], int(response["data"]["metadata"]["version"])

    def _write(self, keys: list[SigningKey], version: int) -> None:
        try:
            self.client.secrets.kv.v2.create_or_update_secret(
                path=f"{self.path}/{SIGNING}",
                mount_point=self.mount,
                secret={"keys": json.dumps([key.to_record() for key in keys])},
                cas=version,
            )
        except InvalidRequest as error:
            if "check-and-set" in str(error):
                raise CheckAndSetConflict(str(error)) from None
            raise
        self.keys, self.version = keys, version + 1
        self.publish()

    def publish(self) -> None:
        """Write the public JWKS where the services read it."""
        self.client.secrets.kv.v2.create_or_update_secret(
            path=f"{self.path}/{JWKS}", mount_point=self.mount, secret={"jwks": json.dumps(self.jwks())}
        )

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def load(self, now: float | None = None) -> None:
        """Read the keys; make the first one if there is none; rotate if the current one is due."""
        self.keys, self.version = self._read()
        if not self.keys:
            with contextlib.suppress(CheckAndSetConflict):
                self._write([SigningKey(tokens.new_kid(), tokens.generate_key(), time.time())], 0)
            self.keys, self.version = self._read()
        self.rotate_if_due(now)

    def rotate_if_due(self, now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        if now - self.current.created_at >= self.rotation_s:
            return self.rotate(now)
        return None

    def rotate(self, now: float | None = None) -> str:
        """Replace the signing key. The previous one signs no more tokens, but its public key stays in the JWKS until
        the tokens it signed have expired. Returns the previous kid."""
        now = time.time() if now is None else now
        previous = self.current
        retired = [
            key if key.retired_at is not None else SigningKey(key.kid, key.private_key, key.created_at, now)
            for key in self.keys
        ]
        live = [key for key in retired if not self._expired(key, now)]
        try:
            self._write([*live, SigningKey(tokens.new_kid(), tokens.generate_key(), now)], self.version)
        except CheckAndSetConflict:
            self.keys, self.version = self._read()  # another instance rotated: its key is ours
        return previous.kid

    def reload(self, now: float | None = None) -> None:
        """Pick up another instance's rotation; drop retired keys whose tokens have all expired."""
        self.keys, self.version = self._read()
        now = time.time() if now is None else now
        if any(self._expired(key, now) for key in self.keys):
            live = [key for key in self.keys if not self._expired(key, now)]
            with contextlib.suppress(CheckAndSetConflict):
                self._write(live, self.version)

    def _expired(self, key: SigningKey, now: float) -> bool:
        """A retired key whose last token has expired (and the verifiers' leeway with it)."""
        return key.retired_at is not None and now > key.retired_at + self.access_ttl_s + tokens.CLOCK_SKEW_S

    # -- use -----------------------------------------------------------------------------------------------------
    @property
    def current(self) -> SigningKey:
        if not self.keys:
            raise RuntimeError("no signing key loaded: call load() first")
        return self.keys[-1]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        now = time.time()
        published = [self.current] + [key for key in reversed(self.keys[:-1]) if not self._expired(key, now)]
        return tokens.jwks(*(tokens.public_jwk(key.private_key, key.kid) for key in published))

    def issue(self, subject: str, roles: frozenset[str], session_id: str, ttl_s: int) -> str:
        """An access token signed by the current key (ttl_s at most the access-token lifetime the JWKS keeps)."""
        key = self.current
        ttl = min(ttl_s, self.access_ttl_s)
        return tokens.issue_access_token(key.private_key, key.kid, subject, roles, session_id, ttl)
