"""Access tokens: Ed25519 signing keys, their public JWK / JWKS, issuing an access token and verifying one.

The gateway issues tokens and owns its keys (stored in Vault, rotated); every service verifies them with
`TokenVerifier` against the public JWKS. The claims are the contract in identity.py. Verification pins the algorithm
to EdDSA (no `none`, no HMAC with a public key), requires a known `kid`, and checks iss, aud, exp, nbf, typ, sub,
sid and roles; any failure raises `InvalidToken` with a short reason that is safe to return to the caller.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from trading_platform.identity import ACCESS_TOKEN_TYPE, AUDIENCE, ISSUER, ROLES, Identity

ALGORITHM = "EdDSA"
MAX_TOKEN_BYTES = 4096  # an access token is a few hundred bytes; anything far larger is refused unparsed
CLOCK_SKEW_S = 5


class InvalidToken(Exception):
    """The token cannot be accepted; str(error) is a short reason safe to send back."""


class VerificationUnavailable(Exception):
    """The keys could not be fetched (Vault unreachable): the token cannot be checked now, so it is refused."""


class MalformedToken(InvalidToken):
    """Not a token at all (not a JWT, oversize, no kid): bad input rather than a bad credential."""


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def new_kid() -> str:
    return uuid.uuid4().hex[:16]


def private_key_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_private_key_pem(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key is not an Ed25519 private key")
    return key


def public_jwk(key: Ed25519PrivateKey | Ed25519PublicKey, kid: str) -> dict[str, str]:
    """The key's public half as a JWK (kty OKP, crv Ed25519), with `kid`, `alg` and `use`."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    jwk: dict[str, str] = json.loads(OKPAlgorithm.to_jwk(public))
    return {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def jwks(*jwk_entries: Mapping[str, str]) -> dict[str, list[dict[str, str]]]:
    """A JWKS document: {"keys": [...]} (current key first, then the previous ones still accepted)."""
    return {"keys": [dict(entry) for entry in jwk_entries]}


def issue_access_token(
    private_key: Ed25519PrivateKey,
    kid: str,
    subject: str,
    roles: list[str] | tuple[str, ...] | frozenset[str],
    session_id: str,
    ttl_s: int,
    now: float | None = None,
) -> str:
    """A signed access token for `subject` with `roles`, bound to session `session_id`, valid for ttl_s seconds."""
    if not subject:
        raise ValueError("subject must not be empty")
    if not session_id:
        raise ValueError("session_id must not be empty")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown roles: {unknown}")
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "roles": sorted(set(roles)),
        "sid": session_id,
        "typ": ACCESS_TOKEN_TYPE,
        "jti": uuid.uuid4().hex,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl_s),
    }
    return jwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid})


@dataclass(frozen=True)
class VerifiedToken:
    subject: str
    roles: frozenset[str]
    session_id: str
    jti: str
    expires_at: int

    def identity(self, via: str = "") -> Identity:
        return Identity(self.subject, "user", self.roles, self.session_id, via)


JwksSource = Callable[[], Mapping[str, Any]]


class TokenVerifier:
    """Verifies access tokens against a JWKS.

    `jwks_source` returns the current JWKS document (e.g. read from Vault); it is called at the first verification
    and again when a token names an unknown kid, at most once every `refetch_interval_s` seconds (so a flood of
    tokens with made-up kids cannot hammer Vault)."""

    def __init__(
        self,
        jwks_source: JwksSource,
        refetch_interval_s: float = 5.0,
    ) -> None:
        self._source = jwks_source
        self._refetch_interval_s = refetch_interval_s
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at: float | None = None

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._fetched_at is not None and now - self._fetched_at < self._refetch_interval_s:
            return
        self._fetched_at = now
        try:
            document = self._source()
        except Exception as error:
            raise VerificationUnavailable(f"the token keys could not be fetched: {type(error).__name__}") from error
        keys: dict[str, Ed25519PublicKey] = {}
        for entry in document.get("keys", []):
            if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519" or not entry.get("kid"):
                continue
            public = OKPAlgorithm.from_jwk(json.dumps(entry))
            if isinstance(public, Ed25519PublicKey):
                keys[str(entry["kid"])] = public
        self._keys = keys

    def _key_for(self, kid: str) -> Ed25519PublicKey:
        if kid not in self._keys:
            self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("token signed by an unknown key")
        return key

    def verify(self, token: str) -> VerifiedToken:
        if not token:
            raise MalformedToken("no token")
        if len(token) > MAX_TOKEN_BYTES:
            raise MalformedToken("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise MalformedToken("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise MalformedToken("token has no kid")
        key = self._key_for(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("token not yet valid") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("token audience not accepted") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token issuer not accepted") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("token signature invalid") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"token lacks claim {error.claim}") from None
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if claims.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidToken("not an access token")
        roles = claims.get("roles")
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise InvalidToken("token roles malformed")
        sid = claims.get("sid")
        if not isinstance(sid, str) or not sid:
            raise InvalidToken("token has no session")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("token has no subject")
        return VerifiedToken(
            subject=subject,
            roles=frozenset(role for role in roles if role in ROLES),
            session_id=sid,
            jti=str(claims["jti"]),
            expires_at=int(claims["exp"]),
        )


# -- revocation (the gateway sets the key when a session ends; every verifier checks it) -----------------------------
REVOKED_KEY_PREFIX = "identity:revoked:"


def revoked_key(session_id: str) -> str:
    """The Redis key whose presence revokes a session's access tokens (`identity:revoked:<sid>`)."""
    return REVOKED_KEY_PREFIX + session_id


class RevocationList:
    """Asks Redis whether a session was revoked. Errors propagate: a caller that cannot check must refuse."""

    def __init__(self, redis_url: str, timeout_s: float = 1.0) -> None:
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    async def is_revoked(self, session_id: str) -> bool:
        return bool(await self._redis.exists(revoked_key(session_id)))

    async def close(self) -> None:
        await self._redis.aclose()
