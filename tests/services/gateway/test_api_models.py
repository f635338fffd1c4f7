"""`POST /api/v1/models/{name}/promote` on a copy of the registry the signal service ships: a model-manager moves a
stage (the registry verifies the version's files first), anyone else is refused before anything is touched, an
unknown version is 404, a gateway without a registry says so (503). `GET /api/v1/account` with execution away keeps
answering from the read model (the broker's figures null)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import hvac
import pytest
from signal_service import BUNDLED_REGISTRY
from trading_policy import ModelRegistry

from tests.services.gateway.readmodel_helpers import api_gateway

pytestmark = pytest.mark.integration


async def test_a_model_manager_promotes_a_version_and_others_cannot(
    make_settings: Any, vault_root: hvac.Client, kafka_bootstrap: str, topic_namespace: str, tmp_path: Path
) -> None:
    shutil.copytree(BUNDLED_REGISTRY, tmp_path / "registry")
    registry = ModelRegistry(tmp_path / "registry")
    version = registry.get("trend-ppo").version
    before = registry.stages("trend-ppo")
    async with api_gateway(
        make_settings,
        vault_root,
        kafka_bootstrap,
        topic_namespace,
        model_registry=str(tmp_path / "registry"),
        execution_address="127.0.0.1:1",
    ) as api:
        http = api.client.http
        manager = await api.user("mona", ["model-manager"])
        for roles in (["viewer"], ["trader"], ["risk-officer"]):
            other = await api.user(f"{roles[0]}-user", roles)
            refused = await http.post(
                "/api/v1/models/trend-ppo/promote",
                json={"version": version, "stage": "shadow"},
                headers={"authorization": f"Bearer {other}"},
            )
            assert refused.status_code == 403, roles
        assert registry.stages("trend-ppo") == before

        headers = {"authorization": f"Bearer {manager}"}
        promoted = await http.post(
            "/api/v1/models/trend-ppo/promote",
            json={"version": version, "stage": "shadow", "reason": "compare"},
            headers=headers,
        )
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["stage"] == "shadow" and promoted.json()["version"] == version
        assert "user:mona" in promoted.json()["reason"]
        assert registry.stages("trend-ppo")["shadow"] == version
        unknown = await http.post("/api/v1/models/trend-ppo/promote", json={"version": "999"}, headers=headers)
        assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "version"
        bad = await http.post("/api/v1/models/trend-ppo/promote", json={"version": "1", "at": 1}, headers=headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "at"

        account = await http.get("/api/v1/account", headers=headers)
        assert account.status_code == 200, account.text
        assert account.json()["cash"] is None and account.json()["trading_state"] == "UNSPECIFIED"


async def test_without_a_registry_promote_is_503_saying_so(
    make_settings: Any, vault_root: hvac.Client, kafka_bootstrap: str, topic_namespace: str
) -> None:
    async with api_gateway(make_settings, vault_root, kafka_bootstrap, topic_namespace) as api:
        manager = await api.user("mona", ["model-manager"])
        response = await api.client.http.post(
            "/api/v1/models/trend-ppo/promote", json={"version": "2"}, headers={"authorization": f"Bearer {manager}"}
        )
        assert response.status_code == 503 and "MODEL_REGISTRY" in response.json()["detail"]
