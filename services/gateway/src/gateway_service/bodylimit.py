"""The request body cap (TRADING_GATEWAY__MAX_BODY_BYTES), checked before anything parses the body.

A `Content-Length` above the cap is refused before a byte is read; a body without one (chunked) is read up to the
cap and refused as soon as it passes it. Either way the answer is `413 application/problem+json` naming `body`,
and the route never runs. A body within the cap is handed on whole (the route reads it as it came), and whatever
the route then receives (a disconnect) comes from the connection.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway_service.config import GatewayConfig
from gateway_service.problems import problem_response

DEFAULT_MAX_BYTES = GatewayConfig().max_body_bytes


def _max_bytes(scope: Scope) -> int:
    engine = getattr(scope["app"].state, "engine", None) if "app" in scope else None
    return int(engine.config.max_body_bytes) if engine is not None else DEFAULT_MAX_BYTES


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        cap = _max_bytes(scope)
        if length is not None:
            if not length.isdigit():
                await self._refuse(scope, receive, send, 400, "bad request", "content-length is not a byte count")
                return
            if int(length) > cap:
                await self._too_large(scope, receive, send, cap)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before the body was whole
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await self._too_large(scope, receive, send, cap)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        await self._refuse(scope, receive, send, 413, "content too large", f"the body is larger than {cap} bytes")

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, title: str, detail: str) -> None:
        errors = [{"field": "body", "message": detail}]
        response = problem_response(status, title, f"body: {detail}", errors, headers={"Connection": "close"})
        await response(scope, receive, send)
