"""Secrets from Vault (or OpenBao, same API) through hvac: token, AppRole and Kubernetes auth, KV v2 reads, and
background renewal of the client token (at two thirds of its TTL).

Errors name the path and what to do; secret values are never logged.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import hvac
import requests
import structlog
from hvac.exceptions import Forbidden, InvalidPath, InvalidRequest, Unauthorized

log = structlog.get_logger("trading_platform.vault")

KUBERNETES_JWT_PATH = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class SecretAccessError(RuntimeError):
    """A secret could not be read: denied, missing, or Vault not reachable. The message names the path."""


def unreachable(addr: str, error: requests.RequestException) -> SecretAccessError:
    """Vault did not answer (refused, timed out): say so in the platform's words, naming the setting to check."""
    return SecretAccessError(
        f"Vault at {addr} did not answer ({type(error).__name__}): check that Vault is running and that "
        "TRADING_VAULT__ADDR points at it"
    )


def login(
    addr: str,
    auth_method: str,
    *,
    token: str | None = None,
    role_id: str | None = None,
    secret_id: str | None = None,
    approle_file: Path | None = None,
    kubernetes_role: str | None = None,
    kubernetes_jwt_path: Path = KUBERNETES_JWT_PATH,
    kubernetes_mount: str = "kubernetes",
    timeout_s: float = 5.0,
) -> hvac.Client:
    """An authenticated client. auth_method is token, approle or kubernetes (a pod's service-account JWT)."""
    client = hvac.Client(url=addr, timeout=timeout_s)
    try:
        if auth_method == "token":
            if not token:
                raise SecretAccessError(
                    "Vault token auth needs a token (TRADING_VAULT__TOKEN or TRADING_VAULT__TOKEN_FILE)"
                )
            client.token = token
        elif auth_method == "approle":
            if approle_file is not None:
                credentials = json.loads(Path(approle_file).read_text())
                role_id, secret_id = credentials["role_id"], credentials["secret_id"]
            if not role_id or not secret_id:
                raise SecretAccessError(
                    "Vault AppRole auth needs TRADING_VAULT__ROLE_ID and TRADING_VAULT__SECRET_ID "
                    "(or TRADING_VAULT__APPROLE_FILE)"
                )
            client.auth.approle.login(role_id=role_id, secret_id=secret_id)
        elif auth_method == "kubernetes":
            if not kubernetes_role:
                raise SecretAccessError("Vault Kubernetes auth needs TRADING_VAULT__KUBERNETES_ROLE")
            try:
                jwt = kubernetes_jwt_path.read_text().strip()
            except FileNotFoundError as error:
                raise SecretAccessError(
                    f"Vault Kubernetes auth: no service-account token at {kubernetes_jwt_path} (not in a pod?)"
                ) from error
            client.auth.kubernetes.login(role=kubernetes_role, jwt=jwt, mount_point=kubernetes_mount)
        else:
            raise SecretAccessError(f"unknown Vault auth method {auth_method!r}: use token, approle or kubernetes")
        authenticated = client.is_authenticated()
    except (Forbidden, Unauthorized, InvalidPath, InvalidRequest) as error:
        raise SecretAccessError(f"Vault {auth_method} login at {addr} was refused: {error}") from error
    except requests.RequestException as error:
        raise unreachable(addr, error) from error
    if not authenticated:
        raise SecretAccessError(f"Vault {auth_method} login at {addr} did not yield a valid token")
    return client


def read_secret(client: hvac.Client, path: str, key: str | None = None, mount: str = "secret") -> Any:
    """Read a KV v2 secret (all its keys, or one). `path` is relative to the mount, e.g. "trading/alpaca"."""
    try:
        response = client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)
    except Forbidden as error:
        raise SecretAccessError(
            f"permission denied reading {mount}/{path}: the token's policy does not allow it"
        ) from error
    except InvalidPath as error:
        raise SecretAccessError(f"no secret at {mount}/{path}") from error
    except requests.RequestException as error:
        raise unreachable(client.url, error) from error
    data = response["data"]["data"]
    if key is None:
        return data
    if key not in data:
        raise SecretAccessError(f"secret {mount}/{path} has no key {key!r} (it has: {', '.join(sorted(data))})")
    return data[key]


def parse_reference(reference: str) -> tuple[str, str, str]:
    """`vault:<mount>/<path>#<key>` -> (mount, path, key)."""
    if not reference.startswith("vault:") or "#" not in reference:
        raise SecretAccessError(f"not a Vault reference: expected vault:<mount>/<path>#<key>, got {reference[:60]!r}")
    location, key = reference[len("vault:") :].split("#", 1)
    mount, _, path = location.partition("/")
    if not mount or not path or not key:
        raise SecretAccessError(f"incomplete Vault reference {reference!r}: expected vault:<mount>/<path>#<key>")
    return mount, path, key


class TokenRenewer:
    """Renews the client's token in a daemon thread at two thirds of its TTL, so long-running services keep access."""

    def __init__(self, client: hvac.Client, minimum_interval_s: float = 5.0) -> None:
        self.client = client
        self.minimum_interval_s = minimum_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vault-token-renewer", daemon=True)
        self.renewals = 0

    def start(self) -> TokenRenewer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def next_interval_s(self) -> float | None:
        data = self.client.auth.token.lookup_self()["data"]
        if not data.get("renewable") or not data.get("ttl"):
            return None  # root and non-renewable tokens: nothing to do
        return max(self.minimum_interval_s, data["ttl"] * 2 / 3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                interval = self.next_interval_s()
            except Exception as error:
                log.warning("vault token lookup failed", error=str(error))
                interval = self.minimum_interval_s
            if interval is None:
                return
            if self._stop.wait(interval):
                return
            try:
                self.client.auth.token.renew_self()
                self.renewals += 1
                log.info("vault token renewed")
            except Exception as error:
                log.error("vault token renewal failed", error=str(error))


# The public JWKS the gateway publishes (identity contract): KV v2 secret/trading/gateway/jwks, field `jwks`.
JWKS_MOUNT = "secret"
JWKS_PATH = "trading/gateway/jwks"
JWKS_FIELD = "jwks"


def read_jwks(client: hvac.Client) -> dict[str, Any]:
    """The gateway's public JWKS from Vault (SecretAccessError if it is not there or not readable)."""
    raw = read_secret(client, JWKS_PATH, JWKS_FIELD, JWKS_MOUNT)
    try:
        document = json.loads(raw)
    except (TypeError, json.JSONDecodeError) as error:
        raise SecretAccessError(f"{JWKS_MOUNT}/{JWKS_PATH}#{JWKS_FIELD} is not a JSON JWKS document") from error
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise SecretAccessError(f"{JWKS_MOUNT}/{JWKS_PATH}#{JWKS_FIELD} has no `keys` list")
    return document
