"""The first admin, from a one-time secret in Vault; and the gateway's Vault policy and dev provisioning.

The secret lives at KV v2 `<mount>/<path>/bootstrap`, field `secret` (the dev stack and `tradectl up` write a
random one while the gateway has no user). `POST /api/v1/auth/bootstrap` with it creates the first admin and
consumes it: the claim is one Redis SET NX (so two racing requests make one admin), then the secret is destroyed in
Vault. There is no default password anywhere.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
from pathlib import Path

import hvac
import redis
from hvac.exceptions import Forbidden, InvalidPath
from trading_platform import pki

from gateway_service.users import users_key

BOOTSTRAP = "bootstrap"
SERVICE = "gateway"


def policy(mount: str = "secret", path: str = "trading/gateway") -> str:
    """The gateway's Vault policy: its own subtree only (signing keys, JWKS, the bootstrap secret, its Kafka
    password), where it may write (rotation, publishing the JWKS, consuming the bootstrap secret); and issuing its
    own gRPC certificate (the service runner serves health over mTLS)."""
    return "\n".join(
        [
            f'path "{mount}/data/{path}/*" {{ capabilities = ["create", "read", "update", "delete"] }}',
            f'path "{mount}/metadata/{path}/*" {{ capabilities = ["read", "delete"] }}',
            f'path "{pki.issue_path(SERVICE)}" {{ capabilities = ["update"] }}',
        ]
    )


class Bootstrap:
    def __init__(self, client: hvac.Client, mount: str, path: str) -> None:
        self.client = client
        self.mount = mount
        self.path = f"{path}/{BOOTSTRAP}"

    def matches(self, presented: str) -> bool:
        """Whether `presented` is the waiting bootstrap secret (False when none waits)."""
        try:
            response = self.client.secrets.kv.v2.read_secret_version(
                path=self.path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except (InvalidPath, Forbidden):
            return False
        expected = str(response["data"]["data"].get("secret", ""))
        return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())

    def destroy(self) -> None:
        with contextlib.suppress(InvalidPath):
            self.client.secrets.kv.v2.delete_metadata_and_all_versions(path=self.path, mount_point=self.mount)


def write_secret(client: hvac.Client, mount: str = "secret", path: str = "trading/gateway") -> str:
    """A new random bootstrap secret in Vault (replacing any waiting one)."""
    secret = secrets.token_urlsafe(32)
    client.secrets.kv.v2.create_or_update_secret(
        path=f"{path}/{BOOTSTRAP}", mount_point=mount, secret={"secret": secret}
    )
    return secret


def has_secret(client: hvac.Client, mount: str = "secret", path: str = "trading/gateway") -> bool:
    try:
        client.secrets.kv.v2.read_secret_version(
            path=f"{path}/{BOOTSTRAP}", mount_point=mount, raise_on_deleted_version=True
        )
    except InvalidPath:
        return False
    return True


def provision_dev(client: hvac.Client, approle_dir: Path, redis_url: str, prefix: str = "gateway:") -> bool:
    """The dev stack's part for the gateway (with the root token): its policy, its AppRole (credentials in an
    owner-only file `<approle_dir>/gateway.json`), and a bootstrap secret while it has no user. Returns True when a
    bootstrap secret is waiting."""
    client.sys.create_or_update_policy(name=f"trading-{SERVICE}", policy=policy())
    if "approle/" not in client.sys.list_auth_methods():
        client.sys.enable_auth_method("approle")
    client.auth.approle.create_or_update_approle(
        role_name=SERVICE, token_policies=[f"trading-{SERVICE}"], token_ttl="1h", token_max_ttl="24h"
    )
    role_file = approle_dir / f"{SERVICE}.json"
    if not role_file.exists():
        role_id = client.auth.approle.read_role_id(role_name=SERVICE)["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id(role_name=SERVICE)["data"]["secret_id"]
        approle_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(role_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps({"role_id": role_id, "secret_id": secret_id}) + "\n")
    connection = redis.Redis.from_url(redis_url)
    try:
        if connection.exists(users_key(prefix)):
            return False
    finally:
        connection.close()
    if not has_secret(client):
        write_secret(client)
    return True
