"""Fixtures of the gateway tests (the helpers are in helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import hvac
import pytest
from trading_platform.testing.plugin import VaultEndpoint

from tests.services.gateway.helpers import GatewaySettings, Running, bootstrap_admin, gateway_settings, start_gateway


@pytest.fixture
def vault_root(vault_endpoint: VaultEndpoint) -> hvac.Client:
    return hvac.Client(url=vault_endpoint.address, token=vault_endpoint.token)


@pytest.fixture
def make_settings(
    kafka_bootstrap: str, redis_url: str, vault_endpoint: VaultEndpoint, topic_namespace: str, redis_namespace: str
) -> Any:
    def make(**gateway: Any) -> GatewaySettings:
        return gateway_settings(kafka_bootstrap, redis_url, vault_endpoint, topic_namespace, redis_namespace, **gateway)

    return make


@pytest.fixture
async def running(
    make_settings: Any, vault_root: hvac.Client, request: pytest.FixtureRequest
) -> AsyncIterator[Running]:
    """A started gateway with a bootstrapped admin (logged in). `@pytest.mark.gateway_config(key=value)` sets its config."""
    marker = request.node.get_closest_marker("gateway_config")
    settings = make_settings(**(marker.kwargs if marker else {}))
    gateway, client = await start_gateway(settings)
    try:
        admin = await bootstrap_admin(client, vault_root, settings)
        yield Running(settings, gateway, client, admin, await client.token(admin), vault_root)
    finally:
        await client.aclose()
        await gateway.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gateway_config(**keys): TRADING_GATEWAY__* settings of the test's gateway")
