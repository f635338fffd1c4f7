"""Waiting helpers for integration and end-to-end tests: poll a condition until it holds or a deadline passes, and
call a gRPC stub on a short-lived channel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from trading_platform import rpc as grpc_channels


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


async def rpc(address: str, call: Callable[[Any], Any], token: str | None = None) -> Any:
    """`await rpc(address, lambda channel: Stub(channel).Method(request), token)`: on the process's default client
    security, as the user whose access token is given (if any)."""
    security = grpc_channels.default_client_security()
    if token is not None:
        security = security.with_bearer(token)
    async with grpc_channels.channel(address, default_timeout_s=5, security=security) as channel:
        return await call(channel)
