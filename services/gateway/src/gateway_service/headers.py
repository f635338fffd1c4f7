"""Security headers on every response (errors, refusals and static files included) and the CORS allowlist.

The CSP allows nothing inline and nothing from another origin (the dashboard's assets are served here), and no
framing. `/api/` answers are also `Cache-Control: no-store` (tokens, keys and secrets are never cached).

CORS (TRADING_GATEWAY__CORS_ORIGINS, empty by default: same origin only): a request whose `Origin` is listed gets
`Access-Control-Allow-Origin` with that origin (never `*`, never credentials: the API takes bearer tokens, not
cookies), and its preflight is answered here (204); any other origin gets no CORS header at all, so the browser
keeps its page from reading the answer (a preflight from it goes on to the routes, which know no OPTIONS: 405).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway_service.config import GatewayConfig

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
CORS_METHODS = "GET, POST, PUT, DELETE"
CORS_REQUEST_HEADERS = "authorization, content-type"
CORS_EXPOSED = "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, X-Correlation-ID"
CORS_MAX_AGE_S = "600"
DEFAULT_ORIGINS = GatewayConfig().cors_allowed

_SECURITY = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


def _allowed_origins(scope: Scope) -> frozenset[str]:
    engine = getattr(scope["app"].state, "engine", None) if "app" in scope else None
    return engine.config.cors_allowed if engine is not None else DEFAULT_ORIGINS  # type: ignore[no-any-return]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = list(_SECURITY)
        if scope["path"].startswith("/api/"):
            added.append((b"cache-control", b"no-store"))
        origin = _header(scope, b"origin")
        allowed = origin is not None and origin.lower() in _allowed_origins(scope)
        if allowed:
            added += [(b"access-control-allow-origin", str(origin).encode()), (b"vary", b"Origin")]
            if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
                await self._preflight(send, added)
                return
            added.append((b"access-control-expose-headers", CORS_EXPOSED.encode()))

        replaced = {name for name, _ in added if name != b"vary"}  # ours win; a route's Vary is kept beside ours

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in replaced]
                message = {**message, "headers": kept + added}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _preflight(send: Send, added: list[tuple[bytes, bytes]]) -> None:
        headers = [
            *added,
            (b"access-control-allow-methods", CORS_METHODS.encode()),
            (b"access-control-allow-headers", CORS_REQUEST_HEADERS.encode()),
            (b"access-control-max-age", CORS_MAX_AGE_S.encode()),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
