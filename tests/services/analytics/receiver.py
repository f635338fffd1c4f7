"""A real Alertmanager-compatible HTTP receiver for the tests: aiohttp on a free local port, answering
`POST /api/v2/alerts` with the statuses it is told to give, and keeping every body it received."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Receiver:
    url: str = ""
    bodies: list[Any] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to give, in order; then 200
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        status = self.answers.pop(0) if self.answers else 200
        if status == 200:
            self.bodies.append(await request.json())
            self.arrived.set()
        return web.json_response({}, status=status)

    async def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Any]:
        async def enough() -> None:
            while len(self.bodies) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout_s)
        return self.bodies


@asynccontextmanager
async def alertmanager() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/api/v2/alerts", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
