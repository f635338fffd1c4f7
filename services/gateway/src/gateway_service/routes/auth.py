"""Login, refresh, logout, API-key exchange and the first admin (/api/v1/auth)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from trading_platform.identity import Identity

from gateway_service.engine import Enrolment, Issued
from gateway_service.models import (
    ApiKeyExchange,
    BootstrapRequest,
    EnrolledUser,
    IdentityView,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    Revoked,
    TokenResponse,
    UserView,
)
from gateway_service.security import authorize, caller, client_address, engine_of, optional_caller

router = APIRouter(prefix="/api/v1/auth", dependencies=[Depends(authorize)], tags=["auth"])


def token_response(issued: Issued) -> TokenResponse:
    return TokenResponse(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        session_id=issued.session_id,
        username=issued.username,
        roles=sorted(issued.roles),
    )


def enrolled(enrolment: Enrolment) -> EnrolledUser:
    return EnrolledUser(
        user=UserView(**enrolment.user.public()),
        password=enrolment.password,
        totp_secret=enrolment.user.totp_secret,
        totp_uri=enrolment.totp_uri,
    )


@router.post("/login")
async def login(body: LoginRequest, request: Request) -> TokenResponse:
    """Password, plus a TOTP code for every role but viewer: an access token and a refresh token."""
    issued = await engine_of(request).login(body.username, body.password, body.totp_code, client_address(request))
    return token_response(issued)


@router.post("/refresh")
async def refresh(body: RefreshRequest, request: Request) -> TokenResponse:
    """A new access token and a new refresh token; the one sent is used up (sending it again ends the session)."""
    return token_response(await engine_of(request).refresh(body.refresh_token, client_address(request)))


@router.post("/logout")
async def logout(
    request: Request, body: LogoutRequest | None = None, identity: Identity | None = Depends(optional_caller)
) -> Revoked:
    """End the session of the bearer token and/or of the refresh token sent."""
    sids = await engine_of(request).logout(identity, body.refresh_token if body else None, client_address(request))
    return Revoked(revoked_session_ids=sids)


@router.post("/token")
async def token(body: ApiKeyExchange, request: Request) -> TokenResponse:
    """An API key (scripts, CI) exchanged for an access token with the key's roles (no refresh token)."""
    return token_response(await engine_of(request).exchange_api_key(body.api_key, client_address(request)))


@router.post("/bootstrap", status_code=201)
async def bootstrap(body: BootstrapRequest, request: Request) -> EnrolledUser:
    """Create the first admin with the one-time secret from Vault (consumed); returns the admin's TOTP secret."""
    enrolment = await engine_of(request).bootstrap(body.secret, body.username, body.password, client_address(request))
    return enrolled(enrolment)


@router.get("/me")
async def me(identity: Identity = Depends(caller)) -> IdentityView:
    return IdentityView(
        subject=identity.subject, kind=identity.kind, roles=sorted(identity.roles), session_id=identity.session_id
    )
