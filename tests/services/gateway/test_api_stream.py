"""`GET /api/v1/stream` over a real socket (uvicorn), fed by the read model from the real broker: a published event
arrives as the same JSON the REST read returns, ids increase, an idle stream gets heartbeats, a revoked session ends
the stream. (That a subscriber which falls behind is dropped while another keeps receiving is tested on the read
model's fan-out over the real broker, test_readmodel.py: over a socket the kernel's buffers, megabytes, come first.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import hvac
import pytest
from gateway_service.app import HttpServer

from tests.services.gateway.readmodel_helpers import Api, OrderPath, api_gateway

pytestmark = pytest.mark.integration


@pytest.fixture
async def served(
    make_settings: Any, vault_root: hvac.Client, kafka_bootstrap: str, topic_namespace: str
) -> AsyncIterator[tuple[Api, str]]:
    async with api_gateway(
        make_settings,
        vault_root,
        kafka_bootstrap,
        topic_namespace,
        stream_heartbeat_s=0.5,
        stream_queue_size=20,
    ) as api:
        server = HttpServer(api.client.app, "127.0.0.1", 0)
        await server.start()
        try:
            yield api, server.url
        finally:
            await server.stop()


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, Any, int | None]]:
    """(event, data, id) of each server-sent event; comments as ("", comment, None)."""
    event, data, seq = "", "", None
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield "", line[1:].strip(), None
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line.startswith("id: "):
            seq = int(line[4:])
        elif line == "" and event:
            yield event, json.loads(data), seq
            event, data, seq = "", "", None


async def test_a_published_order_arrives_as_its_rest_json(served: tuple[Api, str]) -> None:
    api, url = served
    token = await api.user("vera", ["viewer"])
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        refused = await http.get("/api/v1/stream", params={"topics": "orders,nope"}, headers=headers)
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "topics"
        async with http.stream("GET", "/api/v1/stream", params={"topics": "orders,fills"}, headers=headers) as live:
            assert live.status_code == 200
            assert live.headers["content-type"].startswith("text/event-stream")
            path = OrderPath("AAPL")
            got: list[tuple[str, Any, int | None]] = []
            stream = events(live)  # one iterator: a response's body is read once

            async def read() -> None:
                async for item in stream:
                    if item[0] == "":
                        continue
                    got.append(item)
                    if item[0] == "hello":
                        await path.publish(api.publisher)
                    if item[0] == "fills":
                        return

            await asyncio.wait_for(read(), 30)
            assert [e for e, _, _ in got] == ["hello", "orders", "orders", "orders", "orders", "fills"]
            ids = [seq for _, _, seq in got[1:]]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
            filled = got[4][1]
            detail = (await http.get(f"/api/v1/orders/{path.client_order_id}", headers=headers)).json()
            assert filled == detail["order"]  # the stream's data is the REST read's JSON
            assert got[5][1]["fill_id"] == path.fill_id and got[5][1]["price"] == "101.25"

            async def heartbeat() -> None:
                async for kind, _, _ in stream:
                    if kind == "":
                        return

            await asyncio.wait_for(heartbeat(), 5)


async def test_a_revoked_session_ends_the_stream(served: tuple[Api, str]) -> None:
    api, url = served
    token = await api.user("vera", ["viewer"])
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        headers = {"authorization": f"Bearer {token}"}
        async with http.stream("GET", "/api/v1/stream", headers=headers) as live:
            seen: list[str] = []

            async def read() -> None:
                async for kind, _, _ in events(live):
                    seen.append(kind)
                    if kind == "hello":
                        revoked = await api.client.http.delete(
                            "/api/v1/users/vera/sessions",
                            headers={"authorization": f"Bearer {api.running.admin_token}"},
                        )
                        assert revoked.status_code < 300, revoked.text

            await asyncio.wait_for(read(), 15)  # returns when the server ends the stream
            assert seen[0] == "hello" and seen[-1] == "unauthorized"
