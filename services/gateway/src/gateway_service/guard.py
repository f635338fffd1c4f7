"""The last line: an exception no handler took becomes a `500 application/problem+json` carrying a correlation id
(also in `X-Correlation-ID`); the stack trace goes to the log under that id, never to the client. A store the
gateway needs that is unreachable (Redis) is a `503` with `Retry-After`, not a 500. It sits inside the security
headers, so these answers carry them too.
"""

from __future__ import annotations

import uuid

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from trading_platform.observability import get_logger

from gateway_service.problems import PROBLEM_JSON

log = get_logger("gateway")
UNAVAILABLE_RETRY_S = 5


class ErrorGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as error:
            correlation_id = uuid.uuid4().hex
            unavailable = isinstance(error, RedisConnectionError | RedisTimeoutError)
            log.error(
                "unhandled error",
                correlation_id=correlation_id,
                method=scope.get("method"),
                path=scope.get("path"),
                error=type(error).__name__,
                exc_info=True,
            )
            if started:  # the answer was under way (a stream): the connection is all there is to end
                return
            headers = {"X-Correlation-ID": correlation_id}
            if unavailable:
                status, title, detail = 503, "service unavailable", "a store it needs is unavailable; try again"
                headers["Retry-After"] = str(UNAVAILABLE_RETRY_S)
            else:
                status, title, detail = 500, "internal error", "the gateway could not handle this request"
            body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
            response = JSONResponse(
                {**body, "correlation_id": correlation_id}, status_code=status, media_type=PROBLEM_JSON, headers=headers
            )
            await response(scope, receive, send)
