"""Relaying a REST call to a service's gRPC RPC with the caller's own bearer token, so the service's roles and
four-eyes rules decide, exactly as for tradectl; and the RPC's refusals as problem+json.

The channels are mTLS with the gateway's certificate (the process's default client security, which the service
runner configures from Vault's PKI) and are kept per target. The token is per call (`bearer_metadata`): the service
sees the user (`via` the gateway). Status codes: PERMISSION_DENIED 403, UNAUTHENTICATED 401, INVALID_ARGUMENT 422
naming the field the service named, NOT_FOUND 404, FAILED_PRECONDITION and ALREADY_EXISTS 409, UNAVAILABLE and
DEADLINE_EXCEEDED 503 with Retry-After, anything else 502.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from fastapi import Request
from trading_platform import rpc

from gateway_service.problems import Conflict, Forbidden, InvalidField, NotFound, Problem, Unauthorized
from gateway_service.security import bearer_token

T = TypeVar("T")
RETRY_AFTER_S = "5"
_FIELD = re.compile(r"^([a-z_][a-z0-9_.]*):")  # "quantity: must be positive" names quantity


class Unavailable(Problem):
    status, title = 503, "service unavailable"


class BadGateway(Problem):
    status, title = 502, "bad gateway"


def _channels(request: Request) -> dict[str, grpc.aio.Channel]:
    channels: dict[str, grpc.aio.Channel] | None = getattr(request.app.state, "grpc_channels", None)
    if channels is None:
        channels = request.app.state.grpc_channels = {}
    return channels


def channel_to(request: Request, target: str) -> grpc.aio.Channel:
    channels = _channels(request)
    if target not in channels:
        certificates = rpc.default_client_security().certificates
        channels[target] = rpc.channel(target, security=rpc.ClientSecurity(certificates))
    return channels[target]


async def close_channels(state: Any) -> None:
    channels: dict[str, grpc.aio.Channel] = getattr(state, "grpc_channels", None) or {}
    for open_channel in channels.values():
        await open_channel.close()
    channels.clear()


def problem_of(error: grpc.aio.AioRpcError, service: str) -> Problem:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return Forbidden(f"{service}: {details}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthorized(f"{service}: {details}", headers={"WWW-Authenticate": "Bearer"})
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        match = _FIELD.match(details)
        return InvalidField(f"{service}: {details}", field=match.group(1) if match else "body")
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{service}: {details}")
    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED):
        return Conflict(f"{service}: {details}")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED):
        return Unavailable(f"{service} is unavailable now; try again shortly", headers={"Retry-After": RETRY_AFTER_S})
    return BadGateway(f"{service} answered {code.name}")


async def relay(
    request: Request, service: str, target: str, call: Callable[[grpc.aio.Channel, Any, float], Awaitable[T]]
) -> T:
    """`call(channel, metadata, timeout_s)` with the caller's token; a gRPC error becomes its problem."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": "Bearer"})
    engine = getattr(request.app.state, "engine", None)
    timeout_s = float(getattr(getattr(engine, "config", None), "grpc_timeout_s", 5.0))
    try:
        return await call(channel_to(request, target), rpc.bearer_metadata(token), timeout_s)
    except grpc.aio.AioRpcError as error:
        raise problem_of(error, service) from None


def address(request: Request, name: str, default: str) -> str:
    engine = getattr(request.app.state, "engine", None)
    return str(getattr(getattr(engine, "config", None), name, default))
