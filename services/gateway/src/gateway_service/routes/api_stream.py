"""`GET /api/v1/stream`: the read model's updates as server-sent events (text/event-stream).

`?topics=orders,fills,...` picks channels (readmodel.CHANNELS; all when absent). Each update is `event: <channel>`,
`id: <sequence>` (increasing), `data: <the JSON the REST read returns for that item>`. An idle stream gets a comment
line (`: heartbeat`) every `STREAM_HEARTBEAT_S`; at each heartbeat the caller's token is checked again, and a token
that expired or whose session was revoked ends the stream with `event: unauthorized`. A client that falls behind by
`STREAM_QUEUE_SIZE` updates is sent `event: dropped` and the stream ends (reconnect and re-read). The token goes in
the Authorization header (read with fetch() streaming), never in the URL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from gateway_service.problems import Unauthorized
from gateway_service.readmodel import CHANNELS, Subscription
from gateway_service.routes.api_common import BadParameter, feed_of
from gateway_service.security import authorize, bearer_token, engine_of

router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)], tags=["stream"])
DEFAULT_HEARTBEAT_S = 15.0
SSE_SCHEMA = {"type": "string"}


def channels_of(topics: str | None) -> list[str]:
    if topics is None or not topics.strip():
        return list(CHANNELS)
    wanted = [name.strip() for name in topics.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(CHANNELS))
    if unknown:
        raise BadParameter(f"topics: unknown {', '.join(unknown)}; known: {', '.join(CHANNELS)}", field="topics")
    return wanted


def sse(event: str, data: Any, seq: int | None = None) -> str:
    lines = [f"event: {event}"]
    if seq is not None:
        lines.append(f"id: {seq}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"description": "server-sent events", "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    },
)
async def stream(
    request: Request,
    topics: str | None = Query(None, max_length=512, description="comma-separated channels; all when absent"),
) -> StreamingResponse:
    """Live updates of the read model as server-sent events (see the module's description)."""
    channels = channels_of(topics)
    feed = feed_of(request)
    engine = engine_of(request)
    heartbeat_s = getattr(engine.config, "stream_heartbeat_s", DEFAULT_HEARTBEAT_S)
    token = bearer_token(request)
    subscription = feed.subscribe(channels)

    async def still_allowed() -> bool:
        try:
            await engine.authenticate(token)
        except Unauthorized:
            return False
        return True

    return StreamingResponse(
        _events(subscription, heartbeat_s, still_allowed, feed.fanout.seq),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(subscription: Subscription, heartbeat_s: float, still_allowed: Any, seq: int) -> AsyncIterator[str]:
    updates = subscription.__aiter__()
    pending: asyncio.Future[tuple[str, dict[str, Any]]] | None = None
    try:
        yield "retry: 2000\n" + sse("hello", {"channels": sorted(subscription.channels), "seq": seq})
        while True:
            if pending is None:
                pending = asyncio.ensure_future(updates.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_s)
            if not done:
                if not await still_allowed():
                    yield sse("unauthorized", {"reason": "the access token expired or its session was revoked"})
                    return
                yield ": heartbeat\n\n"
                continue
            try:
                channel, data = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield sse(channel, data, subscription.last_seq)
    finally:
        if pending is not None:
            pending.cancel()
        subscription.close()
