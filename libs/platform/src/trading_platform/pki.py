"""mTLS certificates from OpenBao's (Vault's) PKI engine: the CA layout, issuing, and keeping a certificate fresh.

Layout (set up by `ensure_pki`, idempotent): a root CA in the `pki` mount signs an intermediate CA in `pki_int`,
which issues every leaf certificate. One PKI role per identity (each service, and `tradectl` for the operator CLI)
may issue only certificates whose common name and DNS SANs are that identity's name (plus `localhost` and the
127.0.0.1 IP SAN for local runs, and `<name>.<namespace>.svc[.cluster.local]` in Kubernetes). The gRPC layer reads
the caller's service identity from its certificate's common name, which is also its first DNS SAN.

`CertificateKeeper` issues a certificate at start (a failure raises: the service does not start) and renews it at
two thirds of its lifetime; if the certificate cannot be renewed before it expires, it calls `on_failure` with the
reason, and the runner stops serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import hvac
import structlog
from cryptography import x509

log = structlog.get_logger("trading_platform.pki")

ROOT_MOUNT = "pki"
INTERMEDIATE_MOUNT = "pki_int"
ROOT_TTL = "87600h"
INTERMEDIATE_TTL = "43800h"
DEFAULT_TTL = "1h"  # leaf certificates are short-lived and renewed at 2/3 of their lifetime
MAX_TTL = "24h"
OPERATOR_IDENTITY = "tradectl"


class PkiError(RuntimeError):
    """A certificate could not be issued or renewed; the message says which identity and why."""


def issue_path(identity: str) -> str:
    """The Vault path an identity's policy must allow (`update`) to issue its certificates."""
    return f"{INTERMEDIATE_MOUNT}/issue/{identity}"


def ensure_pki(client: hvac.Client, identities: Iterable[str]) -> None:
    """The root and intermediate CAs (created once) and one issuing role per identity (updated every time)."""
    mounts = client.sys.list_mounted_secrets_engines()
    mounts = mounts.get("data", mounts)
    for mount, ttl in ((ROOT_MOUNT, ROOT_TTL), (INTERMEDIATE_MOUNT, INTERMEDIATE_TTL)):
        if f"{mount}/" not in mounts:
            client.sys.enable_secrets_engine("pki", path=mount, config={"max_lease_ttl": ttl})
    if not _has_ca(client, ROOT_MOUNT):
        client.secrets.pki.generate_root(
            "internal", "trading-platform root CA", extra_params={"ttl": ROOT_TTL}, mount_point=ROOT_MOUNT
        )
    if not _has_ca(client, INTERMEDIATE_MOUNT):
        csr = client.secrets.pki.generate_intermediate(
            "internal", "trading-platform intermediate CA", mount_point=INTERMEDIATE_MOUNT
        )["data"]["csr"]
        signed = client.secrets.pki.sign_intermediate(
            csr,
            "trading-platform intermediate CA",
            extra_params={"ttl": INTERMEDIATE_TTL, "format": "pem_bundle"},
            mount_point=ROOT_MOUNT,
        )["data"]["certificate"]
        client.secrets.pki.set_signed_intermediate(signed, mount_point=INTERMEDIATE_MOUNT)
    for identity in identities:
        client.secrets.pki.create_or_update_role(
            identity,
            {
                "allowed_domains": [identity, "localhost"],
                "allowed_domains_template": False,
                "allow_bare_domains": True,
                "allow_subdomains": False,
                "allow_glob_domains": False,
                "allow_localhost": True,
                "allow_ip_sans": True,
                "allowed_other_sans": [],
                "enforce_hostnames": True,
                "server_flag": True,
                "client_flag": True,
                "key_type": "ec",
                "key_bits": 256,
                "ttl": DEFAULT_TTL,
                "max_ttl": MAX_TTL,
                "no_store": True,
            },
            mount_point=INTERMEDIATE_MOUNT,
        )


def _has_ca(client: hvac.Client, mount: str) -> bool:
    with contextlib.suppress(Exception):
        return bool(client.secrets.pki.read_ca_certificate(mount_point=mount).strip())
    return False


@dataclass(frozen=True)
class TlsMaterial:
    """A leaf certificate with its private key and the CA chain that verifies peers (PEM bytes)."""

    identity: str
    certificate: bytes
    private_key: bytes
    ca_chain: bytes
    not_before: float  # Vault back-dates it (clock skew), so lifetimes count from `issued_at`
    not_after: float
    issued_at: float

    def renew_at(self) -> float:
        return self.issued_at + (self.not_after - self.issued_at) * 2 / 3

    def server_configuration(self) -> Any:
        return grpc.ssl_server_certificate_configuration([(self.private_key, self.certificate)], self.ca_chain)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca_chain, self.private_key, self.certificate)


def issue(
    client: hvac.Client, identity: str, ttl: str = DEFAULT_TTL, alt_names: Iterable[str] = ("localhost",)
) -> TlsMaterial:
    """A fresh certificate for `identity` (common name and first DNS SAN), issued by its PKI role."""
    issued_at = time.time()
    try:
        data = client.secrets.pki.generate_certificate(
            identity,
            identity,
            extra_params={"alt_names": ",".join(alt_names), "ip_sans": "127.0.0.1", "ttl": ttl},
            mount_point=INTERMEDIATE_MOUNT,
        )["data"]
    except Exception as error:  # hvac raises Forbidden, InvalidRequest, InvalidPath, or a requests error
        path = issue_path(identity)
        raise PkiError(f"Vault PKI did not issue a certificate for {identity} ({path}): {error}") from None
    chain = data.get("ca_chain") or [data["issuing_ca"]]
    certificate = x509.load_pem_x509_certificate(data["certificate"].encode())
    return TlsMaterial(
        identity=identity,
        certificate=(data["certificate"] + "\n").encode(),
        private_key=(data["private_key"] + "\n").encode(),
        ca_chain=("\n".join(chain) + "\n").encode(),
        not_before=certificate.not_valid_before_utc.timestamp(),
        not_after=certificate.not_valid_after_utc.timestamp(),
        issued_at=issued_at,
    )


def load_material(identity: str, certificate: Path, private_key: Path, ca_chain: Path) -> TlsMaterial:
    """A certificate issued elsewhere (e.g. `bao write pki_int/issue/tradectl common_name=tradectl`), from PEM files."""
    try:
        pem = certificate.read_bytes()
        parsed = x509.load_pem_x509_certificate(pem)
        return TlsMaterial(
            identity,
            pem,
            private_key.read_bytes(),
            ca_chain.read_bytes(),
            parsed.not_valid_before_utc.timestamp(),
            parsed.not_valid_after_utc.timestamp(),
            max(parsed.not_valid_before_utc.timestamp(), min(time.time(), parsed.not_valid_after_utc.timestamp())),
        )
    except (OSError, ValueError) as error:
        raise PkiError(f"cannot load the {identity} certificate from {certificate.parent}: {error}") from None


class CertificateKeeper:
    """Holds an identity's current certificate and renews it in the background before it expires.

    `issuer` returns a fresh TlsMaterial (e.g. `lambda: issue(client, "risk")`). `on_failure(reason)` is called once
    when the certificate expired without a renewal; until then a failed renewal is retried every `retry_s`."""

    def __init__(
        self,
        issuer: Callable[[], TlsMaterial],
        on_failure: Callable[[str], None] | None = None,
        retry_s: float = 5.0,
    ) -> None:
        self._issuer = issuer
        self._current: TlsMaterial | None = None
        self.on_failure = on_failure
        self.retry_s = retry_s
        self.renewals = 0
        self.failed: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._renew_callbacks: list[Callable[[TlsMaterial], None]] = []

    @classmethod
    def static(cls, material: TlsMaterial) -> CertificateKeeper:
        """A keeper of one certificate that is never renewed (tests, one-shot CLI calls)."""
        keeper = cls(lambda: material)
        keeper._current = material
        return keeper

    def current(self) -> TlsMaterial:
        if self._current is None:
            self._current = self._issuer()
        return self._current

    def on_renew(self, callback: Callable[[TlsMaterial], None]) -> None:
        self._renew_callbacks.append(callback)

    async def start(self) -> None:
        """Issue the first certificate (PkiError if it cannot be) and keep renewing it."""
        if self._current is None:
            self._current = await asyncio.to_thread(self._issuer)
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name=f"certificate-renewal-{self._current.identity}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _keep(self) -> None:
        while True:
            material = self.current()
            await asyncio.sleep(max(0.0, material.renew_at() - time.time()))
            while True:
                try:
                    renewed = await asyncio.to_thread(self._issuer)
                except Exception as error:
                    if time.time() >= material.not_after - self.retry_s:
                        self.failed = f"certificate of {material.identity} expired and could not be renewed: {error}"
                        log.error("certificate renewal failed: stopping", identity=material.identity, error=str(error))
                        if self.on_failure is not None:
                            self.on_failure(self.failed)
                        return
                    log.warning("certificate renewal failed: retrying", identity=material.identity, error=str(error))
                    await asyncio.sleep(min(self.retry_s, max(0.1, material.not_after - time.time() - self.retry_s)))
                    continue
                self._current = renewed
                self.renewals += 1
                log.info("certificate renewed", identity=renewed.identity, not_after=renewed.not_after)
                for callback in self._renew_callbacks:
                    callback(renewed)
                break

    # -- gRPC credentials --------------------------------------------------------------------------------------
    def server_credentials(self) -> grpc.ServerCredentials:
        """Server credentials that present the current certificate to each new connection and require a client
        certificate signed by the platform CA."""
        served: list[TlsMaterial] = [self.current()]

        def fetch() -> Any:
            material = self.current()
            if material is served[0]:
                return None  # unchanged
            served[0] = material
            return material.server_configuration()

        return grpc.dynamic_ssl_server_credentials(
            served[0].server_configuration(), fetch, require_client_authentication=True
        )
