"""Gateway wiring: the FastAPI app (routers), the engine's parts (Redis, Vault, the bus) and the HTTP server.

`create_app(engine)` builds the app; without an engine it has every route but answers none (the access-policy test
lists its routes that way). `build(settings)` is what `python -m gateway_service` runs through the platform's service
runner: the gRPC port serves only health; HTTP is uvicorn in the same event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from redis.asyncio import Redis
from trading_platform.access_policy import AccessPolicy, default_policy
from trading_platform.messaging import Publisher, ensure_topics
from trading_platform.observability import get_logger
from trading_platform.service import ServiceParts
from trading_platform.settings import vault_client
from trading_platform.vault import TokenRenewer

from gateway_service import problems, spec
from gateway_service.bodylimit import BodyLimitMiddleware
from gateway_service.bootstrap import Bootstrap
from gateway_service.config import GatewaySettings
from gateway_service.engine import Engine
from gateway_service.events import TOPIC, IdentityEvents
from gateway_service.guard import ErrorGuardMiddleware
from gateway_service.headers import SecurityHeadersMiddleware
from gateway_service.ratelimit import RateLimitMiddleware
from gateway_service.readmodel import Caps, Fanout, Feed, ReadModel
from gateway_service.routes import (
    admin,
    api_audit,
    api_models,
    api_read,
    api_relay,
    api_stream,
    api_write,
    auth,
    dashboard,
    wellknown,
)
from gateway_service.signing import SigningKeys

log = get_logger("gateway")
OPENAPI_PATH = "/api/v1/openapi.json"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def untraced(scope: MutableMapping[str, Any]) -> bool:
    """Reads are not traced: they are answered from this process's memory (the read model, Redis for the limits and
    revocation) and call no other service, so their span would be a trace of one. FastAPI's telemetry was 40% of a
    read's CPU (bench_api: 0.92 against 0.55 ms a request). Writes keep their server span, whose context the gRPC
    relay carries on to risk and order-management."""
    return scope.get("method") in SAFE_METHODS


# One server span per traced request: no spans of each dependency, endpoint and serialisation (nothing a server
# span does not say), and no metrics (no meter provider is set: they would be recorded for nothing).
TELEMETRY: TelemetryConfig = {"operation_spans": False, "metrics": False, "exclude": untraced}


def create_app(engine: Engine | None = None, policy: AccessPolicy | None = None) -> FastAPI:
    app = FastAPI(
        title="trading-gateway",
        version="1",
        description="Users, sessions, roles and API keys of the trading platform.",
        # The description is published; the Swagger and ReDoc pages are not (they load scripts from a CDN).
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
        telemetry=TELEMETRY,
    )
    app.state.engine = engine
    app.state.policy = policy or default_policy()
    problems.install(app)
    spec.install(app)  # the problem responses every operation may give, in the published description

    # Outermost first: security headers and CORS on every answer; the error guard (500/503 problem, trace to the
    # log); the rate limits; the body cap (before any route parses a body). Pure ASGI: streams pass through.
    for middleware in (BodyLimitMiddleware, RateLimitMiddleware, ErrorGuardMiddleware, SecurityHeadersMiddleware):
        app.add_middleware(middleware)

    routers = (
        wellknown.router,
        auth.router,
        admin.router,
        dashboard.router,
        api_read.router,
        api_write.router,
        api_audit.router,
        api_models.router,
        api_stream.router,
    )
    for router in routers:
        # Flat, not include_router (which nests a router object in this FastAPI): app.routes then lists every
        # APIRoute with its full path template, the name the access policy knows it by. Each route already carries
        # its router's prefix and its `authorize` dependency.
        app.router.routes.extend(router.routes)
    return app


def build_feed(settings: GatewaySettings) -> Feed:
    """The read model (readmodel/) kept by its consumer of the bus, with its caps from the config."""
    config, kafka = settings.gateway, settings.kafka
    caps = Caps(
        orders=config.readmodel_orders,
        events_per_order=config.readmodel_events_per_order,
        signals=config.readmodel_signals,
        rows=config.readmodel_rows,
        points=config.readmodel_points,
        history_s=config.readmodel_history_s,
    )
    return Feed(
        kafka.connection(),
        ReadModel(caps),
        Fanout(config.stream_queue_size),
        namespace=kafka.namespace,
        group_options=kafka.group_options(),
    )


class GatewayApp:
    """The engine and what it stands on: Redis, Vault (signing keys, JWKS, bootstrap secret), the identity events'
    publisher; and the task that re-reads and rotates the signing keys."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        config = settings.gateway
        kafka = settings.kafka
        self.redis = Redis.from_url(settings.redis.url, decode_responses=True)
        self.vault: Any = None
        self.renewer: TokenRenewer | None = None
        self.publisher = Publisher(kafka.connection(), "gateway", namespace=kafka.namespace)
        self.engine: Engine | None = None
        self.task: asyncio.Task[None] | None = None
        self.feed = build_feed(settings)
        self.config = config

    async def start(self) -> None:
        config = self.config
        self.vault = await asyncio.to_thread(vault_client, self.settings.vault)
        self.renewer = TokenRenewer(self.vault).start()
        keys = SigningKeys(
            self.vault, config.vault_mount, config.vault_path, config.access_token_ttl_s, config.key_rotation_s
        )
        await asyncio.to_thread(keys.load)
        kafka = self.settings.kafka
        await ensure_topics(kafka.connection(), [TOPIC], namespace=kafka.namespace)
        await self.publisher.start()
        bootstrap = Bootstrap(self.vault, config.vault_mount, config.vault_path)
        self.engine = Engine(config, self.redis, keys, bootstrap, IdentityEvents(self.publisher))
        self.task = asyncio.create_task(self._keep_keys())
        await self.feed.start()
        log.info("signing key loaded", kid=keys.current.kid, published=len(keys.jwks()["keys"]))

    async def _keep_keys(self) -> None:
        engine = self.engine
        if engine is None:  # start() sets it before this task starts
            return
        while True:
            await asyncio.sleep(self.config.key_reload_s)
            try:
                await asyncio.to_thread(engine.keys.reload)
                await engine.rotate_if_due()
            except Exception as error:  # Vault away for a moment: keep signing with the keys held
                log.error("signing keys not refreshed", error=str(error))

    async def stop(self) -> None:
        await self.feed.stop()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.engine is not None:
            await self.engine.events.close()
        await self.publisher.stop()
        if self.renewer is not None:
            self.renewer.stop()
        await self.redis.aclose()

    async def redis_answers(self) -> bool:
        return bool(await self.redis.ping())


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield  # the service runner owns SIGTERM/SIGINT and stops this server itself


class HttpServer:
    """uvicorn serving the app in the service's event loop (start() returns once it listens)."""

    def __init__(self, app: FastAPI, host: str, port: int, trusted_proxies: str = "") -> None:
        # The client address counts failed logins, so X-Forwarded-For is believed only from the proxies named
        # (uvicorn would otherwise believe it from 127.0.0.1).
        self.server = _Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
                proxy_headers=bool(trusted_proxies),
                forwarded_allow_ips=trusted_proxies or None,
                server_header=False,
            )
        )
        self.task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.server.config.host}:{self.port}"

    async def start(self) -> None:
        self.task = asyncio.create_task(self._serve())
        while not self.server.started:
            if self.task.done():
                raise RuntimeError(
                    f"the gateway could not listen on {self.server.config.host}:{self.server.config.port}"
                )
            await asyncio.sleep(0.02)

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind; start() reports it
            return

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


class _AttachEngine:
    """Attaches the started engine to the app (the engine needs Vault and the bus, so it exists only after start)."""

    def __init__(self, gateway: GatewayApp, app: FastAPI) -> None:
        self.gateway = gateway
        self.app = app

    async def start(self) -> None:
        self.app.state.engine = self.gateway.engine
        self.app.state.feed = self.gateway.feed

    async def stop(self) -> None:
        self.app.state.engine = None
        self.app.state.feed = None
        await api_relay.close_channels(self.app.state)


async def build(settings: GatewaySettings) -> ServiceParts:
    gateway = GatewayApp(settings)
    app = create_app()
    http = HttpServer(app, settings.gateway.host, settings.gateway.port, settings.gateway.trusted_proxies)
    return ServiceParts(
        components=[gateway, _AttachEngine(gateway, app), http],
        health_checks={"redis": gateway.redis_answers},
        consumers=lambda: gateway.feed.consumers,  # the read model's: supervised like a service's
        ready_info={"http": f"{settings.gateway.host}:{settings.gateway.port}"},
    )
