"""Security headers on every answer the gateway gives (successes, every kind of error and refusal, the dashboard's
page and files), CORS only for the listed origins, and an unhandled error as a 500 problem with a correlation id
whose trace goes to the log only. Over the real Redis, OpenBao and Kafka."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gateway_service.headers import CSP, SECURITY_HEADERS
from structlog.testing import capture_logs

from tests.services.gateway.helpers import Running, bearer
from tests.services.gateway.readmodel_helpers import api_gateway

pytestmark = pytest.mark.integration
DESK = "https://desk.example.com"


@pytest.fixture
async def running(
    make_settings: Any, vault_root: Any, kafka_bootstrap: str, topic_namespace: str, request: pytest.FixtureRequest
) -> AsyncIterator[Running]:
    marker = request.node.get_closest_marker("gateway_config")
    config = marker.kwargs if marker else {}
    async with api_gateway(make_settings, vault_root, kafka_bootstrap, topic_namespace, **config) as api:
        yield api.running


def assert_secured(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url.path, response.status_code, name)
    if response.request.url.path.startswith("/api/"):
        assert response.headers["cache-control"] == "no-store"


def test_the_csp_allows_nothing_inline_nothing_foreign_and_no_framing() -> None:
    directives = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP and "*" not in CSP
    assert directives["default-src"] == directives["script-src"] == directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"
    assert SECURITY_HEADERS["Strict-Transport-Security"].startswith("max-age=")
    assert int(SECURITY_HEADERS["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 31536000


async def test_every_kind_of_answer_carries_the_security_headers(running: Running) -> None:
    http = running.client.http
    viewer = await running.client.create_user(running.admin_token, "vera", ["viewer"])
    viewer_token = await running.client.token(viewer)
    page = await http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', page.text)
    assert assets, "the dashboard page names its assets"
    answers = {
        "page": page,
        "asset": await http.get(assets[0]),
        "ok": await http.get("/healthz"),
        "api ok": await http.get("/api/v1/auth/me", headers=bearer(viewer_token)),
        "unauthenticated": await http.get("/api/v1/auth/me"),
        "forbidden": await http.get("/api/v1/users", headers=bearer(viewer_token)),
        "not found": await http.get("/api/v1/no-such-thing"),
        "method not allowed": await http.delete("/healthz"),
        "invalid": await http.post("/api/v1/auth/login", json={"username": "x"}),
        "malformed json": await http.post(
            "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
        ),
        "too large": await http.post("/api/v1/auth/login", content=b"x" * (70 * 1024)),
    }
    expected = {
        "page": 200,
        "asset": 200,
        "ok": 200,
        "api ok": 200,
        "unauthenticated": 401,
        "forbidden": 403,
        "not found": 404,
        "method not allowed": 405,
        "invalid": 422,
        "malformed json": 422,
        "too large": 413,
    }
    assert {name: r.status_code for name, r in answers.items()} == expected
    for name, response in answers.items():
        assert_secured(response)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", name


@pytest.mark.gateway_config(rate_limit_address="2/minute")
async def test_refusals_by_the_limiter_carry_them_too(running: Running) -> None:
    http = running.client.at("198.51.100.90").http
    statuses = [(await http.get("/healthz")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = await http.get("/api/v1/auth/me")
    assert refused.status_code == 429
    assert_secured(refused)


async def test_an_unhandled_error_is_a_500_problem_with_a_correlation_id_and_the_trace_only_in_the_log(
    running: Running,
) -> None:
    app = running.client.app

    async def broken() -> None:
        raise ZeroDivisionError("secret internals: db password hunter2")

    app.add_api_route("/api/v1/broken", broken, methods=["GET"])
    with capture_logs() as logs:
        response = await running.client.http.get("/api/v1/broken")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert_secured(response)
    body = response.json()
    correlation_id = response.headers["x-correlation-id"]
    assert body["correlation_id"] == correlation_id and re.fullmatch(r"[0-9a-f]{32}", correlation_id)
    for leak in ("Traceback", "ZeroDivisionError", "hunter2", "secret internals", ".py"):
        assert leak not in response.text
    logged = [entry for entry in logs if entry.get("correlation_id") == correlation_id]
    assert len(logged) == 1
    assert logged[0]["error"] == "ZeroDivisionError" and logged[0]["exc_info"] is True
    assert logged[0]["path"] == "/api/v1/broken"
    # The gateway goes on serving.
    assert (await running.client.http.get("/healthz")).status_code == 200


@pytest.mark.gateway_config(cors_origins=f"{DESK}, http://localhost:5173")
async def test_a_listed_origin_gets_cors_and_any_other_gets_no_cors_header(running: Running) -> None:
    http = running.client.http
    preflight = await http.options(
        "/api/v1/positions",
        headers={
            "origin": DESK,
            "access-control-request-method": "GET",
            "access-control-request-headers": "authorization",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == DESK
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in preflight.headers
    assert_secured(preflight)
    simple = await http.get("/healthz", headers={"origin": DESK})
    assert simple.headers["access-control-allow-origin"] == DESK
    assert "RateLimit-Remaining" in simple.headers["access-control-expose-headers"]
    assert simple.headers["vary"] == "Origin"

    for stranger in ("https://evil.example.com", "https://desk.example.com.evil.example", "null"):
        other_preflight = await http.options(
            "/api/v1/positions", headers={"origin": stranger, "access-control-request-method": "GET"}
        )
        other = await http.get("/healthz", headers={"origin": stranger})
        for response in (other_preflight, other):
            assert not [h for h in response.headers if h.startswith("access-control-")], (stranger, response.headers)
        assert other_preflight.status_code == 405
        assert other_preflight.headers["content-type"] == "application/problem+json"


async def test_by_default_no_origin_is_allowed_cross_origin(running: Running) -> None:
    response = await running.client.http.get("/healthz", headers={"origin": DESK})
    preflight = await running.client.http.options(
        "/healthz", headers={"origin": DESK, "access-control-request-method": "GET"}
    )
    for answer in (response, preflight):
        assert not [h for h in answer.headers if h.startswith("access-control-")]
