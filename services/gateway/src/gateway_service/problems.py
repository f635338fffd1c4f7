"""Errors as RFC 9457 problem details (application/problem+json): a status, a title, a detail and, for bad input, the
fields at fault. Never a stack trace: anything unexpected is a plain 500."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from trading_platform.observability import get_logger

log = get_logger("gateway")
PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error the client is told about. `detail` must be safe to show (never says whether a user exists)."""

    status = 400
    title = "bad request"

    def __init__(
        self, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None, status: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.headers = headers or {}
        if status is not None:
            self.status = status


class Unauthorized(Problem):
    status, title = 401, "unauthorized"


class Forbidden(Problem):
    status, title = 403, "forbidden"


class NotFound(Problem):
    status, title = 404, "not found"


class Conflict(Problem):
    status, title = 409, "conflict"


class Gone(Problem):
    status, title = 410, "gone"


class InvalidField(Problem):
    status, title = 422, "invalid request"


class TooManyAttempts(Problem):
    status, title = 429, "too many attempts"

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, int(retry_after_s + 0.999)))})


class BusUnavailable(Problem):
    """The event bus cannot record the change (Kafka is down): nothing was changed; the client may try again."""

    status, title = 503, "service unavailable"
    RETRY_AFTER_S = 5

    def __init__(self, detail: str = "the event bus is unavailable: nothing was changed; try again shortly") -> None:
        super().__init__(detail, headers={"Retry-After": str(self.RETRY_AFTER_S)})


def problem_response(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    """`("body", "username")` -> `username`; query and path parameters keep their place: `path.username`."""
    parts = [str(part) for part in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, error: Problem) -> JSONResponse:
        errors = [{"field": error.field, "message": error.detail}] if error.field else None
        return problem_response(error.status, error.title, error.detail, errors, error.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = []
        for item in error.errors():
            message = item.get("msg", "invalid")
            if item.get("type") == "extra_forbidden":
                message = "unknown field"
            elif item.get("type") == "json_invalid":
                message = "the body is not valid JSON"
            errors.append({"field": _field(item.get("loc", ())), "message": message})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem_response(422, "invalid request", detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        titles = {404: "not found", 405: "method not allowed"}
        title = titles.get(error.status_code, "error")
        detail = str(error.detail) if error.status_code != 404 else f"no route {request.url.path}"
        return problem_response(error.status_code, title, detail, headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("unhandled error", path=request.url.path, error=type(error).__name__)
        return problem_response(500, "internal error", "the gateway could not handle this request")
