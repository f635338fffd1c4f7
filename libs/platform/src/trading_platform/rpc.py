"""gRPC for every service: an asyncio server with health and reflection and one interceptor chain (auth hook,
tracing, metrics, logging), and client channels that carry trace context and a default deadline.

Authentication and authorisation plug in through `AuthHook`: a callable given the full method name and the call's
metadata that raises `Unauthenticated` or `PermissionDenied`. The default allows every call (services sit behind
network policies); the API gateway's tokens will be checked here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram

log = structlog.get_logger("trading_platform.rpc")
tracer = trace.get_tracer("trading_platform.rpc")

RPC_CALLS = Counter("rpc_server_calls_total", "gRPC calls handled", ["method", "code"])
RPC_LATENCY = Histogram(
    "rpc_server_duration_seconds",
    "gRPC handling time",
    ["method"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0),
)


class Unauthenticated(Exception):
    pass


class PermissionDenied(Exception):
    pass


AuthHook = Callable[[str, dict[str, str]], None]


def allow_all(_method: str, _metadata: dict[str, str]) -> None:
    return None


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Auth hook, then a SERVER span (parent from the caller's traceparent), Prometheus metrics and one log line."""

    def __init__(self, auth: AuthHook = allow_all, log_calls: bool = True) -> None:
        self.auth = auth
        self.log_calls = log_calls

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        inner = handler.unary_unary
        interceptor = self

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
            token = otel_context.attach(propagate.extract(metadata))
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                with tracer.start_as_current_span(method.lstrip("/"), kind=SpanKind.SERVER) as span:
                    span.set_attribute("rpc.system", "grpc")
                    try:
                        interceptor.auth(method, metadata)
                    except Unauthenticated as error:
                        code = grpc.StatusCode.UNAUTHENTICATED
                        await context.abort(code, str(error) or "authentication required")
                    except PermissionDenied as error:
                        code = grpc.StatusCode.PERMISSION_DENIED
                        await context.abort(code, str(error) or "not allowed")
                    try:
                        return await inner(request, context)
                    except Exception as error:
                        code = context.code() or grpc.StatusCode.UNKNOWN
                        if code == grpc.StatusCode.OK:
                            code = grpc.StatusCode.UNKNOWN
                        span.set_status(Status(StatusCode.ERROR, str(error)))
                        raise
                    finally:
                        if context.code() not in (None, grpc.StatusCode.OK):
                            code = context.code()
                        span.set_attribute("rpc.grpc.status_code", code.value[0])
            finally:
                otel_context.detach(token)
                elapsed = time.perf_counter() - start
                RPC_CALLS.labels(method, code.name).inc()
                RPC_LATENCY.labels(method).observe(elapsed)
                if interceptor.log_calls:
                    log.info("rpc", method=method, code=code.name, duration_ms=round(elapsed * 1000, 3))

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@dataclass
class Servicer:
    """One gRPC service to serve: its generated add_*_to_server function, the implementation and its full name."""

    add_to_server: Callable[[Any, Any], None]
    implementation: Any
    full_name: str  # e.g. trading.risk.v1.RiskService


class RpcServer:
    """An asyncio gRPC server with health (NOT_SERVING until set_serving) and reflection."""

    def __init__(
        self,
        servicers: Iterable[Servicer],
        host: str = "127.0.0.1",
        port: int = 0,
        auth: AuthHook = allow_all,
        log_calls: bool = True,
    ) -> None:
        self.servicers = list(servicers)
        self.server = grpc.aio.server(interceptors=[ServerInterceptor(auth, log_calls)])
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        for servicer in self.servicers:
            servicer.add_to_server(servicer.implementation, self.server)
        names = [s.full_name for s in self.servicers]
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        self.host = host

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        await self.server.start()
        await self.set_serving(False)

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *(s.full_name for s in self.servicers)]:
            await self.health.set(name, status)

    async def stop(self, grace_s: float = 5.0) -> None:
        await self.set_serving(False)
        await self.server.stop(grace_s)


class ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Injects the current trace context into metadata and applies a default deadline."""

    def __init__(self, default_timeout_s: float) -> None:
        self.default_timeout_s = default_timeout_s

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        metadata = list(client_call_details.metadata or []) + list(carrier.items())
        timeout = client_call_details.timeout if client_call_details.timeout is not None else self.default_timeout_s
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        return await continuation(details, request)


def insecure_channel(target: str, default_timeout_s: float = 2.0) -> grpc.aio.Channel:
    """A channel whose calls carry trace context and time out after default_timeout_s unless told otherwise."""
    return grpc.aio.insecure_channel(target, interceptors=[ClientInterceptor(default_timeout_s)])


async def health_status(target: str, service: str = "", timeout_s: float = 1.0) -> str:
    """SERVING, NOT_SERVING, or UNREACHABLE."""
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.aio.AioRpcError:
            return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
