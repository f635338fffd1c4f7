"""`POST /api/v1/models/{name}/promote {version, stage, reason}`: point a stage of the model registry at a version,
as `tradectl models promote` does (the signal service polls the registry and hot-swaps within about a second).

The registry is a directory (`MODEL_REGISTRY`, the signal service's `SIGNAL__MODEL_REGISTRY`); there is no gRPC
RPC for it, so the access policy's role (model-manager) is the check, and the registry verifies the version's
content hash before the stage moves. A gateway without a registry configured (or without trading_policy installed)
answers 503 saying so; an unknown model or version is 404.
"""

from __future__ import annotations

import asyncio
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from trading_platform.identity import Identity

from gateway_service.problems import NotFound
from gateway_service.routes.api_relay import Unavailable
from gateway_service.security import authorize, caller

router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)], tags=["models"])
NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z._-]{1,32}$")]
    stage: Literal["production", "shadow"] = "production"
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class Promoted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_name: str
    stage: str
    previous_version: str | None = Field(description="the version the stage held before")
    version: str
    at: str
    reason: str


def _registry(request: Request) -> Any:
    engine = getattr(request.app.state, "engine", None)
    root = getattr(getattr(engine, "config", None), "model_registry", "")
    if not root:
        raise Unavailable("no model registry on this gateway (TRADING_GATEWAY__MODEL_REGISTRY)")
    try:
        from trading_policy import ModelRegistry
    except ImportError:
        raise Unavailable("this gateway cannot open the model registry (trading_policy is not installed)") from None
    return ModelRegistry(FilePath(root))


@router.post("/models/{name}/promote")
async def promote(
    body: PromoteRequest, request: Request, name: str = Path(pattern=NAME), identity: Identity = Depends(caller)
) -> Promoted:
    """Point `stage` (production = live, or shadow) of model `name` at `version` (model-manager)."""
    registry = _registry(request)
    from trading_policy import RegistryError

    reason = f"{body.reason} ({identity.actor} via the API)".strip()
    try:
        entry = await asyncio.to_thread(registry.promote, name, body.version, body.stage, reason)
    except (RegistryError, FileNotFoundError) as error:
        raise NotFound(f"{name} {body.version}: {error}", field="version") from None
    return Promoted(
        model_name=name,
        stage=entry["stage"],
        previous_version=entry.get("from"),
        version=entry["to"],
        at=entry["at"],
        reason=entry["reason"],
    )
