"""Public documents: the JWKS services and clients verify access tokens with, and liveness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from gateway_service.security import authorize, engine_of

router = APIRouter(dependencies=[Depends(authorize)], tags=["public"])


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> dict[str, Any]:
    """The public keys of the current and the recently retired signing keys."""
    return engine_of(request).keys.jwks()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
