"""Every route is checked against the access policy (trading_platform.access_policy), deny by default: the bearer
token (if any) is verified, its session checked against revocation, and the route's template looked up. A route
missing from the policy is refused to everyone."""

from __future__ import annotations

from fastapi import Request
from trading_platform.access_policy import AccessPolicy, NotInPolicy, PermissionDenied, Unauthenticated
from trading_platform.identity import TOKEN_METADATA_KEY, Identity

from gateway_service.engine import Engine
from gateway_service.problems import Forbidden, Unauthorized
from gateway_service.ratelimit import SESSION_STATE


def engine_of(request: Request) -> Engine:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise RuntimeError("the gateway engine is not attached to this app (app.state.engine)")
    return engine


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def bearer_token(request: Request) -> str | None:
    header = request.headers.get(TOKEN_METADATA_KEY, "")
    scheme, _, token = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("authorization header must be 'Bearer <access token>'")
    return token.strip()


async def authorize(request: Request) -> None:
    """The router-wide dependency: sets request.state.identity (None for an anonymous caller of a public route)."""
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    policy: AccessPolicy = request.app.state.policy
    rule = policy.routes.get(f"{request.method.upper()} {template}")
    identity = None
    if rule is not None and rule.public:
        # A public route works without a token; one that came along (an expired one at logout) is used if valid.
        try:
            token = bearer_token(request)
            identity = await engine_of(request).authenticate(token) if token else None
        except Unauthorized:
            identity = None
    elif rule is not None:
        token = bearer_token(request)
        known = request.scope.get("state", {}).get(SESSION_STATE)  # the revocation the limits' step read
        identity = await engine_of(request).authenticate(token, known) if token else None
    try:
        policy.check_route(request.method, template, identity)
    except Unauthenticated as error:
        raise Unauthorized(str(error), headers={"WWW-Authenticate": "Bearer"}) from None
    except (PermissionDenied, NotInPolicy) as error:
        raise Forbidden(str(error)) from None
    request.state.identity = identity


async def caller(request: Request) -> Identity:
    """The authenticated caller of a non-public route (authorize ran first). A coroutine, as every dependency here:
    FastAPI runs a plain function in its thread pool, a thread hand-off per request for a getattr."""
    identity: Identity | None = getattr(request.state, "identity", None)
    if identity is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": "Bearer"})
    return identity


async def optional_caller(request: Request) -> Identity | None:
    return getattr(request.state, "identity", None)
