"""The REST writes under /api/v1, relayed to the services' gRPC RPCs with the caller's bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from gateway_service.security import authorize

router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)], tags=["write"])
