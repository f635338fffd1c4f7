"""`GET /api/v1/audit` (the ledger's entries, through audit's gRPC Query with the caller's token) and
`GET /api/v1/audit/status` (the hash chain's last verification, from audit.verifications.v1 in the read model, or a
verification run now with `?verify=true`, audit's gRPC Verify).

Entries come oldest first, each with its message decoded to JSON (readmodel.convert). The ledger's Query has no
position to resume from, so a page's cursor carries how many matching entries came before it (signed, like every
cursor): at most `MAX_OFFSET` entries are skipped. `actor` matches the message's own `actor` (or `operator`,
`requested_by`), which the ledger does not index: with it, at most `MAX_SCANNED` entries are looked at.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from google.protobuf import symbol_database
from google.protobuf.message import DecodeError, Message
from pydantic import BaseModel, ConfigDict
from trading.audit.v1 import audit_pb2, audit_pb2_grpc

from gateway_service.readmodel import InvalidCursor
from gateway_service.readmodel.convert import model_for, rfc3339, to_json
from gateway_service.routes.api_common import (
    BadParameter,
    ItemsPage,
    ListQuery,
    cursors_of,
    list_query,
    model_of,
)
from gateway_service.routes.api_read import CLIENT_ORDER_ID_PATTERN, SYMBOL_PATTERN
from gateway_service.routes.api_relay import address, relay
from gateway_service.security import authorize

router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)], tags=["audit"])
AUDIT = "audit"
MAX_OFFSET = 10_000
MAX_SCANNED = 5_000
ACTOR_FIELDS = ("actor", "operator", "requested_by")
Verification = model_for(audit_pb2.VerificationCompleted)


class AuditEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sequence: int
    hash: str
    prev_hash: str
    topic: str
    partition: int
    offset: int
    key: str
    message_type: str
    recorded_at: str | None
    recorded_at_ns: int
    message_id: str
    correlation_id: str
    client_order_id: str
    symbol: str
    ts_event: str | None
    ts_event_ns: int
    actor: str
    message: dict[str, Any] | None


class AuditStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verified: bool
    verification: Verification | None  # type: ignore[valid-type]


def _decoded(entry: audit_pb2.LedgerEntry) -> Message | None:
    try:
        cls = symbol_database.Default().GetSymbol(entry.message_type)
    except KeyError:
        return None
    try:
        return cls.FromString(entry.payload)  # type: ignore[no-any-return]
    except DecodeError:
        return None


def _actor(message: Message | None) -> str:
    if message is None:
        return ""
    for name in ACTOR_FIELDS:
        if name in message.DESCRIPTOR.fields_by_name:
            value = getattr(message, name)
            if value:
                return str(value)
    return ""


def entry_view(entry: audit_pb2.LedgerEntry, message: Message | None) -> dict[str, Any]:
    return {
        "sequence": entry.sequence,
        "hash": entry.hash,
        "prev_hash": entry.prev_hash,
        "topic": entry.topic,
        "partition": entry.partition,
        "offset": entry.offset,
        "key": entry.key.decode(errors="replace"),
        "message_type": entry.message_type,
        "recorded_at": rfc3339(entry.recorded_at),
        "recorded_at_ns": entry.recorded_at,
        "message_id": entry.message_id,
        "correlation_id": entry.correlation_id,
        "client_order_id": entry.client_order_id,
        "symbol": entry.symbol,
        "ts_event": rfc3339(entry.ts_event),
        "ts_event_ns": entry.ts_event,
        "actor": _actor(message),
        "message": to_json(message) if message is not None else None,
    }


@router.get("/audit", response_model=ItemsPage[AuditEntry])
async def audit(
    request: Request,
    query: ListQuery = Depends(list_query),
    topic: str | None = Query(None, pattern=r"^[a-z0-9._-]{1,128}$", description="entries of this topic"),
    actor: str | None = Query(None, max_length=128, description="entries whose message names this actor"),
    client_order_id: str | None = Query(None, pattern=CLIENT_ORDER_ID_PATTERN),
    correlation_id: str | None = Query(None, max_length=128),
    symbol: str | None = Query(None, pattern=SYMBOL_PATTERN),
) -> Any:
    """The audit ledger's entries, oldest first, filtered by topic, actor, order, chain, symbol and time."""
    filters = {
        "topic": topic,
        "actor": actor,
        "client_order_id": client_order_id,
        "correlation_id": correlation_id,
        "symbol": symbol,
    }
    cursors = cursors_of(request)
    scope = cursors.scope(request.url.path, {**query.filters, **filters})
    offset = 0
    if query.cursor:
        try:
            offset = cursors.decode(query.cursor, scope)[0]
        except InvalidCursor as error:
            raise BadParameter(str(error), field="cursor") from None
    if not 0 <= offset <= MAX_OFFSET:
        raise BadParameter("cursor: out of range", field="cursor")
    wanted = offset + query.limit + 1
    message = audit_pb2.QueryRequest(
        client_order_id=client_order_id or "",
        correlation_id=correlation_id or "",
        symbol=symbol or "",
        start=query.from_ns or 0,
        end=query.to_ns or 0,
        topic=topic or "",
        limit=MAX_SCANNED if actor else wanted,
    )
    response = await relay(
        request,
        AUDIT,
        address(request, "audit_address", "127.0.0.1:50056"),
        lambda ch, md, t: audit_pb2_grpc.AuditServiceStub(ch).Query(message, metadata=md, timeout=t),
    )
    matched = []
    for entry in response.entries:
        decoded = _decoded(entry)
        if actor and _actor(decoded) != actor:
            continue
        matched.append((entry, decoded))
        if len(matched) >= wanted:
            break
    page = matched[offset : offset + query.limit]
    more = len(matched) > offset + query.limit and offset + query.limit <= MAX_OFFSET
    return {
        "items": [entry_view(entry, decoded) for entry, decoded in page],
        "next_cursor": cursors.encode((offset + query.limit, ""), scope) if more else None,
    }


@router.get("/audit/status")
async def audit_status(
    request: Request, verify: bool = Query(False, description="verify the whole chain now (audit's Verify)")
) -> AuditStatus:
    """The hash chain's last verification (audit.verifications.v1), or one run now with `verify=true`."""
    if verify:
        response = await relay(
            request,
            AUDIT,
            address(request, "audit_address", "127.0.0.1:50056"),
            lambda ch, md, t: audit_pb2_grpc.AuditServiceStub(ch).Verify(
                audit_pb2.VerifyRequest(), metadata=md, timeout=max(t, 60.0)
            ),
        )
        verification = to_json(response)
    else:
        verification = model_of(request).verification
    return AuditStatus.model_validate(
        {"verified": bool(verification and verification["ok"]), "verification": verification}
    )
