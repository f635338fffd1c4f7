"""The published API description says what the gateway really answers on errors: every operation documents its
problem responses (`application/problem+json`, RFC 9457) instead of FastAPI's `HTTPValidationError`, so a client
(and schemathesis) can hold each answer to the spec: the body cap (413), the rate limits (429), a store away (503)
and the validation (422) apply to every route; authentication and the access policy (401, 403), missing objects
(404), bad parameters (400) and state conflicts (409, 410) to the routes that answer them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from gateway_service.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "correlation_id": {"type": "string"},
    },
}
ERRORS = {
    400: "bad request or query parameter (the field is named)",
    401: "no valid credentials",
    403: "not allowed to the caller's roles",
    404: "no such object or route",
    409: "conflicts with the current state",
    410: "no longer available",
    413: "the request body is larger than the cap",
    422: "invalid request (each field at fault is named)",
    429: "too many requests (Retry-After, RateLimit-* headers)",
    503: "a service or store the gateway needs is unavailable (Retry-After)",
}


def install(app: FastAPI) -> None:
    """Wrap the app's OpenAPI generation: every operation documents the problem responses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for schemas_name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(schemas_name, None)
        reference = {"$ref": "#/components/schemas/Problem"}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                for status, description in ERRORS.items():
                    responses[str(status)] = {
                        "description": description,
                        "content": {PROBLEM_JSON: {"schema": reference}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
