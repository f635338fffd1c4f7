"""Run a paper exchange inside a test process: a background thread with its own event loop, on a free port; and
the one way tests and benchmarks call the admin routes (`admin_call`, with the admin key in X-Admin-Key)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from paper_exchange.bars import MAX_LIMIT
from paper_exchange.engine import Exchange, ExchangeConfig
from paper_exchange.server import ADMIN_HEADER, Faults, ServerConfig, create_app

# Where the dev stack keeps the admin key: secret/trading/paper-exchange#admin_key (KV v2, mount `secret`).
ADMIN_SECRET_PATH = "trading/paper-exchange"  # pragma: allowlist secret (a Vault path, not a value)


def admin_headers(admin_key: str) -> dict[str, str]:
    return {ADMIN_HEADER: admin_key}


def admin_call(url: str, admin_key: str, method: str, path: str, **kwargs: Any) -> Any:
    """`method` /admin/`path` on the exchange at `url` with the admin key; raises on an error status."""
    response = httpx.request(method, f"{url}/admin/{path}", headers=admin_headers(admin_key), timeout=30, **kwargs)
    response.raise_for_status()
    return response.json()


def stack_admin_key(vault_addr: str, vault_token: str) -> str:
    """The admin key of the dev stack's exchange, from its Vault."""
    import hvac

    client = hvac.Client(url=vault_addr, token=vault_token)
    secret = client.secrets.kv.v2.read_secret_version(path=ADMIN_SECRET_PATH, raise_on_deleted_version=True)
    return str(secret["data"]["data"]["admin_key"])


@dataclass
class RunningExchange:
    url: str
    key_id: str
    secret_key: str
    exchange: Exchange
    server: uvicorn.Server
    thread: threading.Thread
    admin_key: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        return admin_call(self.url, self.admin_key, method, path, **kwargs)

    def advance(self, minutes: int = 1) -> dict[str, Any]:
        return self.admin("POST", "advance", params={"minutes": minutes})  # type: ignore[no-any-return]

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        return self.admin("PUT", "faults", json=faults)  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_exchange(
    config: ExchangeConfig | None = None,
    speed: float = 0.0,
    faults: Faults | None = None,
    rate_limit_per_minute: int = 200,
    warm_minutes: int = 1,
    max_page_size: int = MAX_LIMIT,
) -> RunningExchange:
    """Start a paper exchange on a free port (manual clock unless speed > 0), advanced warm_minutes into the day;
    max_page_size caps a page of /v2/stocks/bars (fewer than Alpaca's 10,000 makes clients walk pages)."""
    exchange = Exchange(config or ExchangeConfig())
    key_id, secret_key = "PKTEST" + secrets.token_hex(6).upper(), secrets.token_urlsafe(24)
    admin_key = secrets.token_urlsafe(24)
    server_config = ServerConfig(
        key_id,
        secret_key,
        rate_limit_per_minute,
        speed,
        faults or Faults(),
        admin_key=admin_key,
        max_page_size=max_page_size,
    )
    app = create_app(exchange, server_config)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio", lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="paper-exchange", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("paper exchange did not start")
        time.sleep(0.02)
    running = RunningExchange(f"http://127.0.0.1:{port}", key_id, secret_key, exchange, server, thread, admin_key)
    if warm_minutes:
        running.advance(warm_minutes)
    return running


@pytest.fixture
def paper_exchange() -> Iterator[RunningExchange]:
    """A fresh paper exchange per test (manual clock: call .advance(n))."""
    running = start_exchange()
    try:
        yield running
    finally:
        running.stop()
