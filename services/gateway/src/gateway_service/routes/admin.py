"""The admin's routes (/api/v1): users, roles, sessions, API keys and the signing key. Who may call each is the
access policy's `routes:` section (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from trading_platform.identity import Identity

from gateway_service.apikeys import ApiKey
from gateway_service.models import (
    USERNAME_PATTERN,
    ApiKeyView,
    CreateApiKeyRequest,
    CreatedApiKey,
    CreateUserRequest,
    EnrolledUser,
    ResetUserRequest,
    Revoked,
    RoleRequest,
    Rotated,
    SessionView,
    UserView,
)
from gateway_service.routes.auth import enrolled
from gateway_service.security import authorize, caller, client_address, engine_of
from gateway_service.users import User

router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)], tags=["admin"])
UsernamePath = Path(pattern=USERNAME_PATTERN)


def user_view(user: User) -> UserView:
    return UserView(**user.public())


def key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(**key.public())


# -- users ------------------------------------------------------------------------------------------------------
@router.get("/users")
async def list_users(request: Request) -> list[UserView]:
    return [user_view(user) for user in await engine_of(request).users.all()]


@router.post("/users", status_code=201)
async def create_user(body: CreateUserRequest, request: Request, identity: Identity = Depends(caller)) -> EnrolledUser:
    """A new user with the roles given; the password (generated unless given) and TOTP secret are returned once."""
    enrolment = await engine_of(request).create_user(
        identity, body.username, body.roles, body.password, client_address(request)
    )
    return enrolled(enrolment)


@router.get("/users/{username}")
async def get_user(request: Request, username: str = UsernamePath) -> UserView:
    return user_view(await engine_of(request).user(username))


@router.post("/users/{username}/disable")
async def disable_user(
    request: Request, username: str = UsernamePath, identity: Identity = Depends(caller)
) -> UserView:
    """Refuse the user's logins, refreshes and API keys; end the user's sessions."""
    return user_view(await engine_of(request).set_disabled(identity, username, True, client_address(request)))


@router.post("/users/{username}/enable")
async def enable_user(request: Request, username: str = UsernamePath, identity: Identity = Depends(caller)) -> UserView:
    return user_view(await engine_of(request).set_disabled(identity, username, False, client_address(request)))


@router.post("/users/{username}/reset")
async def reset_user(
    request: Request,
    body: ResetUserRequest | None = None,
    username: str = UsernamePath,
    identity: Identity = Depends(caller),
) -> EnrolledUser:
    """A new password and TOTP secret (returned once); ends the user's sessions and lifts a lockout."""
    password = body.password if body else None
    return enrolled(await engine_of(request).reset(identity, username, password, client_address(request)))


# -- roles ------------------------------------------------------------------------------------------------------
@router.post("/users/{username}/roles")
async def grant_role(
    body: RoleRequest, request: Request, username: str = UsernamePath, identity: Identity = Depends(caller)
) -> UserView:
    return user_view(await engine_of(request).grant(identity, username, body.role, client_address(request)))


@router.delete("/users/{username}/roles/{role}")
async def revoke_role(
    request: Request, role: str, username: str = UsernamePath, identity: Identity = Depends(caller)
) -> UserView:
    """Take the role away; the user's sessions end (their tokens carried it)."""
    return user_view(await engine_of(request).revoke_role(identity, username, role, client_address(request)))


# -- sessions ---------------------------------------------------------------------------------------------------
@router.get("/users/{username}/sessions")
async def list_sessions(request: Request, username: str = UsernamePath) -> list[SessionView]:
    engine = engine_of(request)
    await engine.user(username)
    return [SessionView(**vars(session)) for session in await engine.sessions.of_user(username)]


@router.delete("/users/{username}/sessions")
async def revoke_user_sessions(
    request: Request, username: str = UsernamePath, identity: Identity = Depends(caller)
) -> Revoked:
    engine = engine_of(request)
    await engine.user(username)
    sids = [session.session_id for session in await engine.sessions.of_user(username)]
    for sid in sids:
        await engine.revoke_session(identity, sid, client_address(request))
    return Revoked(revoked_session_ids=sids)


@router.delete("/sessions/{session_id}")
async def revoke_session(
    request: Request, session_id: str = Path(pattern=r"^[0-9a-f]{32}$"), identity: Identity = Depends(caller)
) -> Revoked:
    await engine_of(request).revoke_session(identity, session_id, client_address(request))
    return Revoked(revoked_session_ids=[session_id])


# -- API keys ---------------------------------------------------------------------------------------------------
@router.get("/apikeys")
async def list_api_keys(request: Request) -> list[ApiKeyView]:
    return [key_view(key) for key in await engine_of(request).apikeys.all()]


@router.post("/apikeys", status_code=201)
async def create_api_key(
    body: CreateApiKeyRequest, request: Request, identity: Identity = Depends(caller)
) -> CreatedApiKey:
    """A key owned by `owner` with some of the owner's roles; the key itself is returned once."""
    key, plain = await engine_of(request).create_api_key(
        identity, body.name, body.owner, body.roles, body.expires_in_s, client_address(request)
    )
    return CreatedApiKey(key=key_view(key), api_key=plain)


@router.delete("/apikeys/{key_id}")
async def revoke_api_key(
    request: Request, key_id: str = Path(pattern=r"^[0-9a-f]{16}$"), identity: Identity = Depends(caller)
) -> ApiKeyView:
    return key_view(await engine_of(request).revoke_api_key(identity, key_id, client_address(request)))


# -- signing key ------------------------------------------------------------------------------------------------
@router.post("/signing-key/rotate")
async def rotate_signing_key(request: Request, identity: Identity = Depends(caller)) -> Rotated:
    """Replace the signing key now (it also rotates by itself every TRADING_GATEWAY__KEY_ROTATION_S)."""
    kid, previous = await engine_of(request).rotate_signing_key(identity.actor, client_address(request))
    return Rotated(kid=kid, previous_kid=previous)
