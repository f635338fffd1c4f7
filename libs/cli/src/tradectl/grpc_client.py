"""How tradectl calls the services over gRPC: its client certificate and the user's access token.

The certificate is the operator CLI's (`tradectl`, issued by the platform's Vault PKI): from the PEM files in
TRADECTL_TLS_DIR (tls.crt, tls.key, ca.crt) when set, else issued by the local dev stack of TRADECTL_RUN_DIR
(default `.run`, as `make up` leaves it). The token is the logged-in user's (`tradectl login`, tradectl.auth): the
services refuse a call without one (UNAUTHENTICATED) or with too few roles (PERMISSION_DENIED).
"""

from __future__ import annotations

import os
from pathlib import Path

from trading_platform import pki
from trading_platform.devstack import DEFAULT_RUN_DIR, DevStack
from trading_platform.identity import TOKEN_METADATA_KEY
from trading_platform.rpc import BEARER, ClientSecurity


def certificate() -> pki.CertificateKeeper:
    tls_dir = os.environ.get("TRADECTL_TLS_DIR")
    if tls_dir:
        folder = Path(tls_dir)
        material = pki.load_material(pki.OPERATOR_IDENTITY, folder / "tls.crt", folder / "tls.key", folder / "ca.crt")
        return pki.CertificateKeeper.static(material)
    run_dir = Path(os.environ.get("TRADECTL_RUN_DIR", str(DEFAULT_RUN_DIR)))
    return DevStack.from_run_dir(run_dir).endpoints().grpc_client().certificates


def access_token() -> str | None:
    """The logged-in user's access token (from tradectl.auth), or None."""
    try:
        from tradectl import auth
    except ImportError:
        return None
    for key, value in auth.bearer_metadata():
        if key == TOKEN_METADATA_KEY and value.startswith(BEARER):
            return str(value[len(BEARER) :])
    return None


def client_security() -> ClientSecurity:
    """The certificate and the token of one command (resolved now: a command is short-lived)."""
    return ClientSecurity(certificate()).with_bearer(access_token())
