"""schemathesis against the gateway's published OpenAPI description: every operation the spec lists at run time is
called with generated input (seeded: `derandomize`, a fixed number of examples each) over a real socket, once
without credentials and once as a user holding every role; no answer may be a server error, and each must conform
to the spec (a documented status code, its content type, a body matching its schema). Over the real Redis, OpenBao
and Kafka; the relayed services are not listening (their 503 with Retry-After is documented); the model registry
is an empty folder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from gateway_service.app import OPENAPI_PATH, HttpServer
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from trading_platform.identity import ROLES

from tests.services.gateway.readmodel_helpers import Api, api_gateway

pytestmark = pytest.mark.integration
EXAMPLES = 5  # per operation and run: about 600 requests in all


@schemathesis.check
def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except the documented "unavailable" answer of a relay whose service is away: a 503 problem with
    Retry-After (the relayed services are not listening here)."""
    headers = {name.lower(): value for name, value in response.headers.items()}
    unavailable = (
        response.status_code == 503
        and "retry-after" in headers
        and "application/problem+json" in str(headers.get("content-type"))
    )
    if response.status_code >= 500 and not unavailable:
        raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")
    return None


CHECKS = [no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# An event stream never ends (its own tests read it); logging out would end the fuzzing user's session midway.
SKIPPED = {("GET", "/api/v1/stream")}
SKIPPED_WITH_CREDENTIALS = {("POST", "/api/v1/auth/logout")}
UNREACHABLE = "127.0.0.1:1"


@pytest.fixture
async def served(
    make_settings: Any, vault_root: Any, kafka_bootstrap: str, topic_namespace: str, tmp_path: Path
) -> AsyncIterator[tuple[Api, str]]:
    async with api_gateway(
        make_settings,
        vault_root,
        kafka_bootstrap,
        topic_namespace,
        rate_limit_auth="100000/second",
        risk_address=UNREACHABLE,
        oms_address=UNREACHABLE,
        audit_address=UNREACHABLE,
        grpc_timeout_s=1,
        model_registry=str(tmp_path / "models"),  # an empty registry: a promotion names an unknown model (404)
    ) as api:
        server = HttpServer(api.client.app, "127.0.0.1", 0)
        await server.start()
        try:
            yield api, server.url
        finally:
            await server.stop()


def fuzz(schema: Any, base_url: str, headers: dict[str, str], skipped: set[tuple[str, str]]) -> tuple[int, list[str]]:
    """Every operation of the schema, EXAMPLES cases each; (operations run, failures)."""
    failures: list[str] = []
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in skipped:
            continue
        ran += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=15)
            case.validate_response(response, checks=CHECKS, headers=headers)

        try:
            check()
        except Exception as error:  # one failing operation must not hide the others'
            failures.append(f"{operation.method.upper()} {operation.path}: {error}"[:2000])
    return ran, failures


async def test_every_answer_conforms_to_the_published_schema_with_and_without_credentials(
    served: tuple[Api, str],
) -> None:
    api, base_url = served
    async with httpx.AsyncClient(base_url=base_url) as http:
        published = (await http.get(OPENAPI_PATH)).json()
    schema = schemathesis.openapi.from_dict(published)
    token = await api.user("fuzzer", sorted(ROLES))
    anonymous = await asyncio.to_thread(fuzz, schema, base_url, {}, SKIPPED)
    credentialed = await asyncio.to_thread(
        fuzz, schema, base_url, {"Authorization": f"Bearer {token}"}, SKIPPED | SKIPPED_WITH_CREDENTIALS
    )
    operations = sum(len([m for m in item if m != "parameters"]) for item in published["paths"].values())
    assert anonymous[0] == operations - len(SKIPPED)
    assert credentialed[0] == operations - len(SKIPPED) - len(SKIPPED_WITH_CREDENTIALS)
    failures = [f"anonymous: {f}" for f in anonymous[1]] + [f"credentialed: {f}" for f in credentialed[1]]
    assert failures == [], "\n\n".join(failures)
    # The gateway still serves after it all.
    async with httpx.AsyncClient(base_url=base_url) as http:
        assert (await http.get("/healthz")).status_code == 200
