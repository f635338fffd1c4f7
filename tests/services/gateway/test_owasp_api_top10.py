"""The OWASP API Security Top 10 (2023), one section per item, each test against the real gateway (over the real
Redis, OpenBao and Kafka; the write relays against a real risk service, or none listening). The route walks take
whatever the app has at run time, so a route added later is held to the same rules."""

from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import gateway_service
import httpx
import jwt
import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.routing import APIRoute
from gateway_service.app import OPENAPI_PATH, HttpServer, create_app
from starlette.routing import Route
from trading_platform import tokens
from trading_platform.access_policy import default_policy
from trading_platform.messaging import replay

from tests.services.gateway.helpers import bearer
from tests.services.gateway.readmodel_helpers import Api, api_gateway, wait_until
from tests.services.gateway.test_api_writes import risk_service

pytestmark = pytest.mark.integration
GATEWAY_SOURCE = Path(gateway_service.__file__).parent
SAMPLE = {
    "username": "someone",
    "role": "viewer",
    "session_id": "0" * 32,
    "key_id": "0" * 16,
    "client_order_id": "no-such-order",
    "change_id": "no-such-change",
    "name": "no-such-model",
    "view": "overview",
}
# Outside /api/v1, only these (the JWKS, liveness, the dashboard's page and files) are served.
PUBLIC_UNVERSIONED = {"/.well-known/jwks.json", "/healthz", "/", "/app", "/app/{view:path}", "/assets/{name}"}


@pytest.fixture
async def api(
    make_settings: Any, vault_root: Any, kafka_bootstrap: str, topic_namespace: str, request: pytest.FixtureRequest
) -> AsyncIterator[Api]:
    marker = request.node.get_closest_marker("gateway_config")
    config = marker.kwargs if marker else {}
    async with api_gateway(make_settings, vault_root, kafka_bootstrap, topic_namespace, **config) as started:
        yield started


def routes() -> list[tuple[str, str]]:
    """Every (method, path template) the app serves."""
    app = create_app()
    return sorted(
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.methods
        for method in route.methods - {"HEAD"}
    )


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE.get(m.group(1), "x"), template)


async def call(http: httpx.AsyncClient, method: str, template: str, token: str | None) -> httpx.Response:
    headers = bearer(token) if token else {}
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return await http.request(method, concrete(template), headers=headers, timeout=10, **body)  # type: ignore[arg-type]


# == API1:2023 Broken Object Level Authorization ==================================================================
class TestAPI1BrokenObjectLevelAuthorization:
    async def test_a_user_reaches_no_other_users_objects(self, api: Api) -> None:
        http = api.client.http
        mallory = await api.user("mallory", ["trader"])
        admin_sid = jwt.decode(api.running.admin_token, options={"verify_signature": False})["sid"]
        targets = [
            ("GET", f"/api/v1/users/{api.running.admin.username}"),
            ("GET", f"/api/v1/users/{api.running.admin.username}/sessions"),
            ("DELETE", f"/api/v1/users/{api.running.admin.username}/sessions"),
            ("DELETE", f"/api/v1/sessions/{admin_sid}"),
            ("GET", "/api/v1/apikeys"),
        ]
        for method, path in targets:
            response = await http.request(method, path, headers=bearer(mallory))
            assert response.status_code == 403, (method, path, response.text)
        # The admin's session is untouched.
        assert (await http.get("/api/v1/auth/me", headers=bearer(api.running.admin_token))).status_code == 200

    async def test_object_ids_are_unguessable_and_an_unknown_one_tells_nothing(self, api: Api) -> None:
        viewer = await api.user("vic", ["viewer"])
        sid = jwt.decode(viewer, options={"verify_signature": False})["sid"]
        assert re.fullmatch(r"[0-9a-f]{32}", sid)  # 128 random bits
        unknown = await api.get("/api/v1/orders/not-an-order-of-anyone", viewer)
        assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"


# == API2:2023 Broken Authentication ==============================================================================
class TestAPI2BrokenAuthentication:
    async def test_every_non_public_route_refuses_a_missing_or_bad_token(self, api: Api) -> None:
        policy = default_policy()
        http = api.client.http
        viewer = await api.user("vic", ["viewer"])
        claims = jwt.decode(viewer, options={"verify_signature": False})
        header = jwt.get_unverified_header(viewer)
        forged = jwt.encode({**claims, "roles": ["admin"]}, Ed25519PrivateKey.generate(), "EdDSA", headers=header)
        unsigned = jwt.encode({**claims, "roles": ["admin"]}, None, algorithm="none")  # type: ignore[arg-type]
        key = api.running.engine.keys.current
        expired = tokens.issue_access_token(
            key.private_key, key.kid, claims["sub"], claims["roles"], claims["sid"], 30, now=time.time() - 3600
        )
        for method, template in routes():
            if policy.routes[f"{method} {template}"].public:
                continue
            for label, token in (("none", None), ("forged", forged), ("alg none", unsigned), ("expired", expired)):
                response = await call(http, method, template, token)
                assert response.status_code == 401, (label, method, template, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
                assert response.headers["content-type"] == "application/problem+json"

    async def test_a_logged_out_sessions_token_is_refused_at_once(self, api: Api) -> None:
        http = api.client.http
        token = await api.user("lou", ["viewer"])
        assert (await http.get("/api/v1/positions", headers=bearer(token))).status_code == 200
        assert (await http.post("/api/v1/auth/logout", headers=bearer(token))).status_code == 200
        assert (await http.get("/api/v1/positions", headers=bearer(token))).status_code == 401

    async def test_a_malformed_authorization_header_is_401(self, api: Api) -> None:
        for value in ("Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer not.a.jwt", "Bearer " + "a" * 20000):
            response = await api.client.http.get("/api/v1/positions", headers={"authorization": value})
            assert response.status_code == 401, value
            assert response.headers["content-type"] == "application/problem+json"


# == API3:2023 Broken Object Property Level Authorization =========================================================
class TestAPI3BrokenObjectPropertyLevelAuthorization:
    def test_every_request_body_in_the_spec_refuses_unknown_properties(self) -> None:
        spec = create_app().openapi()
        schemas = spec["components"]["schemas"]
        bodies = set()
        for path_item in spec["paths"].values():
            for operation in path_item.values():
                content = operation.get("requestBody", {}).get("content", {})
                for media in content.values():
                    text = json.dumps(media["schema"])
                    bodies |= set(re.findall(r"#/components/schemas/([\w.-]+)", text))
        assert bodies, "the spec names its request bodies"
        for name in sorted(bodies):
            assert schemas[name].get("additionalProperties") is False, name

    async def test_mass_assignment_and_readonly_fields_are_refused_naming_the_field(self, api: Api) -> None:
        http = api.client.http
        admin = bearer(api.running.admin_token)
        for body, field in (
            ({"username": "eve", "roles": ["viewer"], "disabled": False}, "disabled"),
            ({"username": "eve", "roles": ["viewer"], "created_at": 0}, "created_at"),
            ({"username": "eve", "roles": ["viewer"], "is_admin": True}, "is_admin"),
        ):
            refused = await http.post("/api/v1/users", json=body, headers=admin)
            assert refused.status_code == 422, refused.text
            assert [e["field"] for e in refused.json()["errors"]] == [field]
        assert (await http.get("/api/v1/users/eve", headers=admin)).status_code == 404  # nothing was created
        login = await http.post(
            "/api/v1/auth/login", json={"username": "eve", "password": "x" * 12, "roles": ["admin"]}
        )
        assert login.status_code == 422 and login.json()["errors"][0]["field"] == "roles"

    async def test_answers_never_carry_secrets_of_record(self, api: Api) -> None:
        await api.user("vic", ["viewer"])
        listing = await api.client.http.get("/api/v1/users", headers=bearer(api.running.admin_token))
        assert listing.status_code == 200
        for secret in ("password_hash", "totp_secret", "$argon2id$", "refresh_token_hash"):
            assert secret not in listing.text


# == API4:2023 Unrestricted Resource Consumption ==================================================================
class TestAPI4UnrestrictedResourceConsumption:
    @pytest.mark.gateway_config(rate_limit_user="3/minute")
    async def test_requests_past_the_rate_limit_are_429(self, api: Api) -> None:
        token = await api.user("vic", ["viewer"])
        statuses = [(await api.get("/api/v1/positions", token)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]

    async def test_a_body_over_the_cap_is_413_before_the_route_runs(self, api: Api) -> None:
        http = api.client.http
        admin = bearer(api.running.admin_token)
        padding = "x" * (70 * 1024)
        declared = await http.post(
            "/api/v1/users", json={"username": "big", "roles": ["viewer"], "password": padding}, headers=admin
        )

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"username": "big2", "roles": ["viewer"], "password": "'
            for _ in range(80):
                yield b"y" * 1024
            yield b'"}'

        chunked = await http.post(
            "/api/v1/users", content=chunks(), headers={**admin, "content-type": "application/json"}
        )
        for response in (declared, chunked):
            assert response.status_code == 413, response.text
            assert response.json()["errors"][0]["field"] == "body"
        assert "transfer-encoding" in chunked.request.headers
        for name in ("big", "big2"):
            assert (await http.get(f"/api/v1/users/{name}", headers=admin)).status_code == 404

    async def test_over_a_real_socket_a_chunked_flood_is_cut_off_and_the_server_keeps_serving(self, api: Api) -> None:
        server = HttpServer(api.client.app, "127.0.0.1", 0)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url) as http:

                async def flood() -> AsyncIterator[bytes]:
                    for _ in range(1024):  # 64 MiB offered
                        yield b"z" * 65536

                try:
                    response = await http.post("/api/v1/auth/login", content=flood(), timeout=30)
                    assert response.status_code == 413
                except httpx.HTTPError:
                    pass  # the server may close the connection while the client is still sending
                assert (await http.get("/healthz")).status_code == 200
        finally:
            await server.stop()

    async def test_page_size_range_and_field_sizes_are_capped_naming_the_field(self, api: Api) -> None:
        token = await api.user("vic", ["viewer"])
        too_many = await api.get("/api/v1/orders", token, limit=501)
        assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "query.limit"
        too_long = await api.get(
            "/api/v1/orders", token, **{"from": "2000-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
        )
        assert too_long.status_code == 400 and too_long.json()["errors"][0]["field"] in ("from", "to")
        huge = await api.client.http.post("/api/v1/auth/login", json={"username": "u" * 5000, "password": "p"})
        assert huge.status_code == 422 and huge.json()["errors"][0]["field"] == "username"
        malformed = await api.client.http.post(
            "/api/v1/auth/login", content=b'{"username": ', headers={"content-type": "application/json"}
        )
        assert malformed.status_code == 422 and malformed.headers["content-type"] == "application/problem+json"
        assert malformed.json()["errors"][0]["message"] == "the body is not valid JSON"


# == API5:2023 Broken Function Level Authorization ================================================================
class TestAPI5BrokenFunctionLevelAuthorization:
    def test_every_route_is_in_the_access_policy_and_the_policy_names_no_missing_route(self) -> None:
        served = {f"{method} {path}" for method, path in routes()}
        policy = set(default_policy().routes)
        assert served - policy == set(), "routes no policy entry names (they would be refused to everyone)"
        assert policy - served == set(), "policy entries for routes the app does not serve"

    async def test_a_viewer_can_call_no_admin_or_write_route(self, api: Api) -> None:
        policy = default_policy()
        viewer = await api.user("vic", ["viewer"])
        checked = 0
        for method, template in routes():
            rule = policy.routes[f"{method} {template}"]
            if rule.public or "viewer" in rule.roles:
                continue
            response = await call(api.client.http, method, template, viewer)
            assert response.status_code == 403, (method, template, response.text)
            checked += 1
        assert checked >= 20  # the admin routes and every write
        # The writes (any method but GET) are never a viewer's.
        for method, template in routes():
            rule = policy.routes[f"{method} {template}"]
            if method != "GET" and not rule.public:
                assert "viewer" not in rule.roles, (method, template)


# == API6:2023 Unrestricted Access to Sensitive Business Flows ====================================================
class TestAPI6SensitiveBusinessFlows:
    @pytest.mark.gateway_config(user_backoff_after=3, user_lockout_after=3)
    async def test_password_guessing_locks_the_account(self, api: Api) -> None:
        target = await api.client.create_user(api.running.admin_token, "tina", ["viewer"])
        guesses = [(await api.client.login(target, password=f"guess {i}")).status_code for i in range(5)]
        assert guesses == [401, 401, 401, 429, 429]
        assert (await api.client.login(target)).status_code == 429  # even the right password, while locked

    async def test_the_bootstrap_is_once_and_guessing_its_secret_is_throttled(self, api: Api) -> None:
        http = api.client.at("198.51.100.44").http
        answers = [
            (
                await http.post(
                    "/api/v1/auth/bootstrap",
                    json={"secret": f"guess-{i}", "username": f"evil{i}", "password": "x" * 16},
                )
            ).status_code
            for i in range(25)
        ]
        assert 201 not in answers and answers[0] in (401, 403, 409, 410)
        assert 429 in answers  # the address backs off

    async def test_resuming_trading_takes_a_second_risk_officer(
        self,
        make_settings: Any,
        vault_root: Any,
        kafka_bootstrap: str,
        topic_namespace: str,
        grpc_identities: Any,
        redis_url: str,
    ) -> None:
        vault_path = f"trading/gateway-owasp-{topic_namespace.strip('.')}"
        async with (
            risk_service(kafka_bootstrap, topic_namespace, grpc_identities, vault_root, vault_path, redis_url) as risk,
            api_gateway(
                make_settings,
                vault_root,
                kafka_bootstrap,
                topic_namespace,
                vault_path=vault_path,
                risk_address=risk.address,
            ) as desk,
        ):
            http = desk.client.http
            rita = await desk.user("rita", ["risk-officer"])
            halted = await http.post("/api/v1/risk/halt", json={"reason": "drill"}, headers=bearer(rita))
            assert halted.status_code == 200, halted.text
            await wait_until(lambda: _state(http, rita, "HALTED"), what="the halt read back")
            resumed = await http.post("/api/v1/risk/resume", json={"reason": "mine"}, headers=bearer(rita))
            assert resumed.status_code == 202 and resumed.json()["outcome"]["applied"] is False
            outcome = resumed.json()["outcome"]
            own = await http.post(
                f"/api/v1/risk/changes/{outcome['change_id']}/approve",
                json={"content_hash": outcome["content_hash"], "reason": "self"},
                headers=bearer(rita),
            )
            assert own.status_code == 403  # never one's own change
            assert await _state(http, rita, "HALTED")
            pending = (await http.get("/api/v1/risk/changes", headers=bearer(rita))).json()["items"]
            assert [change["change_id"] for change in pending] == [outcome["change_id"]]  # still waiting


async def _state(http: httpx.AsyncClient, token: str, expected: str) -> bool:
    body = (await http.get("/api/v1/risk", headers=bearer(token))).json()
    return bool(body.get("trading_state") == expected)


# == API7:2023 Server Side Request Forgery ========================================================================
class TestAPI7ServerSideRequestForgery:
    def test_no_parameter_or_body_field_takes_a_url(self) -> None:
        spec = create_app().openapi()
        schemas = spec["components"]["schemas"]
        inputs: set[str] = set()
        for path_item in spec["paths"].values():
            for operation in path_item.values():
                inputs |= {parameter["name"] for parameter in operation.get("parameters", [])}
                body = json.dumps(operation.get("requestBody", {}))
                for name in re.findall(r"#/components/schemas/([\w.-]+)", body):
                    inputs |= set(schemas[name].get("properties", {}))
                    assert '"format": "uri"' not in json.dumps(schemas[name]), name
        assert inputs, "the spec names its inputs"
        assert not {n for n in inputs if re.search(r"url|uri|href|callback|webhook|redirect|host", n, re.I)}

    def test_no_route_module_makes_an_outbound_http_request(self) -> None:
        clients = {"httpx", "requests", "aiohttp", "urllib", "urllib3", "http.client", "socket"}
        offenders = []
        for module in sorted((GATEWAY_SOURCE / "routes").glob("*.py")):
            tree = ast.parse(module.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [f"{module.name}: {n}" for n in names if n.split(".")[0] in clients or n in clients]
        assert offenders == []


# == API8:2023 Security Misconfiguration ==========================================================================
class TestAPI8SecurityMisconfiguration:
    async def test_headers_cors_and_no_debug_or_docs_pages(self, api: Api) -> None:
        http = api.client.http
        app = api.client.app
        assert app.debug is False
        health = await http.get("/healthz", headers={"origin": "https://evil.example.com"})
        assert "frame-ancestors 'none'" in health.headers["content-security-policy"]
        assert "unsafe-inline" not in health.headers["content-security-policy"]
        assert health.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" in health.headers
        assert "access-control-allow-origin" not in health.headers
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect", "/openapi.json", "/api/v1/docs"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json", path  # no HTML page
        assert (await http.get(OPENAPI_PATH)).status_code == 200
        trace = await http.request("TRACE", "/healthz")
        assert trace.status_code == 405 and trace.headers["content-type"] == "application/problem+json"

    async def test_no_server_banner_and_no_stack_trace_over_a_real_socket(self, api: Api) -> None:
        app = api.client.app

        async def broken() -> None:
            raise RuntimeError("internal detail /srv/secret.py line 12")

        app.add_api_route("/api/v1/owasp-broken", broken, methods=["GET"])
        server = HttpServer(app, "127.0.0.1", 0)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url) as http:
                response = await http.get("/api/v1/owasp-broken")
                assert response.status_code == 500
                assert "server" not in response.headers
                assert "internal detail" not in response.text and "Traceback" not in response.text
                assert response.json()["correlation_id"] == response.headers["x-correlation-id"]
        finally:
            await server.stop()


# == API9:2023 Improper Inventory Management ======================================================================
class TestAPI9ImproperInventoryManagement:
    def test_the_published_spec_lists_exactly_the_apps_documented_routes(self) -> None:
        app = create_app()
        spec = app.openapi()
        assert spec["openapi"].startswith("3.1")
        published = {
            (method.upper(), path) for path, item in spec["paths"].items() for method in item if method != "parameters"
        }
        in_schema = {
            (method, route.path)
            for route in app.routes
            if isinstance(route, APIRoute) and route.include_in_schema
            for method in route.methods - {"HEAD"}
        }
        assert published == in_schema
        hidden = {route.path for route in app.routes if isinstance(route, APIRoute) and not route.include_in_schema}
        assert hidden <= PUBLIC_UNVERSIONED  # only the dashboard's page and files are left out of the spec

    def test_every_route_is_versioned_or_one_of_the_documented_public_ones(self) -> None:
        unversioned = {path for _, path in routes() if not path.startswith("/api/v1/")}
        assert unversioned <= PUBLIC_UNVERSIONED, unversioned - PUBLIC_UNVERSIONED

    async def test_the_served_spec_is_the_apps(self, api: Api) -> None:
        served = (await api.client.http.get(OPENAPI_PATH)).json()
        assert set(served["paths"]) == set(create_app().openapi()["paths"])


# == API10:2023 Unsafe Consumption of APIs ========================================================================
class TestAPI10UnsafeConsumptionOfAPIs:
    @pytest.mark.gateway_config(risk_address="127.0.0.1:1", grpc_timeout_s=2)
    async def test_an_upstream_failure_is_a_problem_not_passed_through(self, api: Api) -> None:
        rita = await api.user("rita", ["risk-officer"])
        response = await api.client.http.post("/api/v1/risk/halt", json={"reason": "drill"}, headers=bearer(rita))
        assert response.status_code == 503 and "retry-after" in response.headers
        assert response.headers["content-type"] == "application/problem+json"
        for leak in ("StatusCode", "debug_error_string", "grpc_status", "ipv4:", "Traceback"):
            assert leak not in response.text

    async def test_malformed_upstream_records_are_dead_lettered_and_the_reads_go_on(
        self, api: Api, kafka_bootstrap: str, topic_namespace: str
    ) -> None:
        viewer = await api.user("vic", ["viewer"])
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(f"{topic_namespace}oms.events.v1", b"\xff\x00 not a protobuf", key=b"co-bad")
        finally:
            await producer.stop()

        async def dead_lettered() -> bool:
            letters = replay(kafka_bootstrap, "oms.events.v1.dlq", namespace=topic_namespace, timeout_s=10)
            return [m.value.reason_code async for m in letters] == ["decode_error"]

        await wait_until(dead_lettered, what="the malformed record on oms.events.v1.dlq")
        response = await api.get("/api/v1/orders", viewer)
        assert response.status_code == 200, response.text
        assert "not a protobuf" not in response.text
        assert (await api.get("/healthz", viewer)).status_code == 200
