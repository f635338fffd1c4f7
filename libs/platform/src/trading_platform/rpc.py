"""gRPC for every service: an asyncio mTLS server that authenticates and authorises every call, with health and
(dev only) reflection, and client channels that present the caller's certificate and token, carry trace context
and a default deadline.

Every server requires a client certificate signed by the platform CA (trading_platform.pki): the certificate's
name is the caller's service identity. A user's call also carries `authorization: Bearer <access token>`, verified
against the gateway's JWKS (trading_platform.tokens) and the revocation list; the user is then the caller, `via`
the relaying service. Each call, unary or streaming, is checked against the access policy
(trading_platform.access_policy) before its handler runs, inside `identity_scope` of the caller. A refused call gets
UNAUTHENTICATED, PERMISSION_DENIED or INVALID_ARGUMENT with a short reason, its handler never runs, and the refusal
is reported to `Authenticator.on_refusal` (the runner publishes it to security.refusals.v1, so the audit ledger
records it).

Security is explicit: `RpcServer` and `channel` take a `ServerSecurity` / `ClientSecurity`, or use the process
defaults set once with `configure()` (the service runner, the CLI and the test plugin do). With neither, they raise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
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

from trading_platform import access_policy, tokens
from trading_platform.identity import TOKEN_METADATA_KEY, Identity, identity_scope
from trading_platform.pki import CertificateKeeper, TlsMaterial

log = structlog.get_logger("trading_platform.rpc")
tracer = trace.get_tracer("trading_platform.rpc")

RPC_CALLS = Counter("rpc_server_calls_total", "gRPC calls handled", ["method", "code"])
RPC_LATENCY = Histogram(
    "rpc_server_duration_seconds",
    "gRPC handling time",
    ["method"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0),
)
RPC_REFUSALS = Counter("rpc_server_refusals_total", "gRPC calls refused before their handler", ["method", "code"])

MAX_METADATA_BYTES = 8 * 1024  # a request's metadata beyond this is refused (INVALID_ARGUMENT), unparsed
TRANSPORT_METADATA_LIMIT = 4 * MAX_METADATA_BYTES  # what gRPC itself accepts, so the check above can answer
BEARER = "Bearer "


@dataclass(frozen=True)
class Refusal:
    """A call refused before its handler ran: what is reported (and published) for the audit ledger."""

    method: str
    code: grpc.StatusCode
    reason: str
    actor: str  # "user:alice", "service:signal", or "" when the caller could not be verified
    certificate: str  # the client certificate's name
    peer: str


class CallRefused(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str, identity: Identity | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.identity = identity


RevocationCheck = Callable[[str], Awaitable[bool]]
RefusalSink = Callable[[Refusal], Awaitable[None]]


class Authenticator:
    """Who is calling, and may they: the certificate's name, the bearer token, the revocation list, the policy."""

    def __init__(
        self,
        verifier: tokens.TokenVerifier,
        is_revoked: RevocationCheck,
        policy: access_policy.AccessPolicy | None = None,
        on_refusal: RefusalSink | None = None,
    ) -> None:
        self.verifier = verifier
        self.is_revoked = is_revoked
        self.policy = policy or access_policy.default_policy()
        self.on_refusal = on_refusal
        self._pending: set[asyncio.Task[None]] = set()

    async def authenticate(self, method: str, context: grpc.aio.ServicerContext) -> Identity | None:
        """The verified caller of this call, allowed by the policy (None for a public method), or CallRefused."""
        metadata = tuple(context.invocation_metadata() or ())
        size = sum(len(key) + len(value) for key, value in metadata)
        if size > MAX_METADATA_BYTES:
            raise CallRefused(grpc.StatusCode.INVALID_ARGUMENT, "request metadata too large")
        rule = self.policy.methods.get(method)
        if rule is None:
            raise CallRefused(grpc.StatusCode.PERMISSION_DENIED, "method not in the access policy")
        service = certificate_name(context)
        identity = Identity(service, "service") if service else None
        headers = [value for key, value in metadata if key == TOKEN_METADATA_KEY]
        if len(headers) > 1:
            raise CallRefused(grpc.StatusCode.INVALID_ARGUMENT, "more than one authorization header", identity)
        if headers:
            identity = await self._user(headers[0], service, identity)
        if rule.public:
            return identity
        try:
            rule.check(identity, method)
        except access_policy.Unauthenticated as error:
            raise CallRefused(grpc.StatusCode.UNAUTHENTICATED, str(error), identity) from None
        except access_policy.PermissionDenied as error:
            raise CallRefused(grpc.StatusCode.PERMISSION_DENIED, str(error), identity) from None
        return identity

    async def _user(self, header: str | bytes, service: str, transport: Identity | None) -> Identity:
        if not isinstance(header, str) or not header.startswith(BEARER):
            raise CallRefused(grpc.StatusCode.INVALID_ARGUMENT, "authorization must be 'Bearer <token>'", transport)
        try:
            verified = self.verifier.verify(header[len(BEARER) :].strip())
        except tokens.MalformedToken as error:
            raise CallRefused(grpc.StatusCode.INVALID_ARGUMENT, str(error), transport) from None
        except tokens.InvalidToken as error:
            raise CallRefused(grpc.StatusCode.UNAUTHENTICATED, str(error), transport) from None
        except tokens.VerificationUnavailable:
            raise CallRefused(grpc.StatusCode.UNAVAILABLE, "tokens cannot be verified now", transport) from None
        try:
            revoked = await self.is_revoked(verified.session_id)
        except Exception:
            raise CallRefused(grpc.StatusCode.UNAVAILABLE, "the session cannot be checked now", transport) from None
        identity = verified.identity(via=service)
        if revoked:
            raise CallRefused(grpc.StatusCode.UNAUTHENTICATED, "session revoked", identity)
        return identity

    def refused(self, method: str, refusal: CallRefused, context: grpc.aio.ServicerContext) -> None:
        """Count, log and report a refusal (reporting runs in the background: a slow bus never delays the answer)."""
        RPC_REFUSALS.labels(method if method in self.policy.methods else "unknown", refusal.code.name).inc()
        event = Refusal(
            method=method[:200],
            code=refusal.code,
            reason=refusal.reason,
            actor=refusal.identity.actor if refusal.identity else "",
            certificate=certificate_name(context),
            peer=context.peer() or "",
        )
        log.warning("rpc refused", method=event.method, code=event.code.name, reason=event.reason, actor=event.actor)
        if self.on_refusal is not None:
            task = asyncio.create_task(self._report(self.on_refusal, event))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    @staticmethod
    async def _report(sink: RefusalSink, event: Refusal) -> None:
        try:
            await sink(event)
        except Exception as error:
            log.error("could not report a refusal", method=event.method, error=str(error))

    async def drain(self) -> None:
        """Wait for the refusals being reported (at stop)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def certificate_name(context: grpc.aio.ServicerContext) -> str:
    """The client certificate's name: its common name, which must also be one of its DNS SANs ("" if none)."""
    auth = context.auth_context() or {}
    common = [name.decode() for name in auth.get("x509_common_name", [])]
    dns = {name.decode() for name in auth.get("peer_dns", [])}
    if len(common) == 1 and common[0] in dns:
        return common[0]
    return ""


@dataclass
class ServerSecurity:
    certificates: CertificateKeeper
    authenticator: Authenticator


@dataclass
class ClientSecurity:
    """The certificate a client presents and, for a user, where its current access token comes from."""

    certificates: CertificateKeeper
    bearer: Callable[[], str | None] | None = None

    def with_bearer(self, bearer: Callable[[], str | None] | str | None) -> ClientSecurity:
        if isinstance(bearer, str) or bearer is None:
            token = bearer
            return ClientSecurity(self.certificates, lambda: token)
        return ClientSecurity(self.certificates, bearer)


_defaults: dict[str, Any] = {}


def configure(
    server: ServerSecurity | Callable[[], ServerSecurity] | None = None,
    client: ClientSecurity | Callable[[], ClientSecurity] | None = None,
) -> None:
    """Set this process's default server and/or client security (a value, or a factory called when first needed)."""
    if server is not None:
        _defaults["server"] = server
    if client is not None:
        _defaults["client"] = client


def reset_defaults() -> None:
    _defaults.clear()


def configured(kind: str) -> bool:
    """Whether this process has default `server` or `client` security."""
    return kind in _defaults


def _default(kind: str) -> Any:
    value = _defaults.get(kind)
    if value is None:
        raise RuntimeError(
            f"no gRPC {kind} security configured: pass security= or call trading_platform.rpc.configure() "
            "(the service runner does, from Vault PKI and the gateway's JWKS)"
        )
    if callable(value):
        value = _defaults[kind] = value()
    return value


def default_server_security() -> ServerSecurity:
    return _default("server")  # type: ignore[no-any-return]


def default_client_security() -> ClientSecurity:
    return _default("client")  # type: ignore[no-any-return]


# -- server -------------------------------------------------------------------------------------------------------
class ServerInterceptor(grpc.aio.ServerInterceptor):
    """For every call, unary or streaming: authenticate and authorise (refusing before the handler), then a SERVER
    span (parent from the caller's traceparent), Prometheus metrics and one log line, with the caller's identity
    set for the handler."""

    def __init__(self, authenticator: Authenticator, log_calls: bool = True) -> None:
        self.authenticator = authenticator
        self.log_calls = log_calls

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None:
            return self._unknown(method)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(method, handler.stream_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _unknown(self, method: str) -> Any:
        """A method no servicer serves: refused like any other call, and reported."""
        authenticator = self.authenticator

        async def refuse(_requests: Any, context: grpc.aio.ServicerContext) -> Any:
            refusal = CallRefused(grpc.StatusCode.INVALID_ARGUMENT, "unknown method")
            authenticator.refused(method, refusal, context)
            RPC_CALLS.labels("unknown", refusal.code.name).inc()
            await context.abort(refusal.code, refusal.reason)

        return grpc.stream_stream_rpc_method_handler(refuse)

    async def _admit(self, method: str, context: grpc.aio.ServicerContext) -> Identity | None:
        try:
            return await self.authenticator.authenticate(method, context)
        except CallRefused as refusal:
            self.authenticator.refused(method, refusal, context)
            RPC_CALLS.labels(method, refusal.code.name).inc()
            await context.abort(refusal.code, refusal.reason)
            raise AssertionError("abort raises") from None

    def _unary(self, method: str, inner: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        interceptor = self

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            identity = await interceptor._admit(method, context)
            metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
            token = otel_context.attach(propagate.extract(metadata))
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                with tracer.start_as_current_span(method.lstrip("/"), kind=SpanKind.SERVER) as span:
                    span.set_attribute("rpc.system", "grpc")
                    if identity is not None:
                        span.set_attribute("enduser.id", identity.actor)
                    try:
                        with identity_scope(identity):
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
                interceptor._record(method, code, time.perf_counter() - start, identity)

        return wrapped

    def _streaming(self, method: str, inner: Callable[..., Any]) -> Callable[..., AsyncIterator[Any]]:
        interceptor = self

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            identity = await interceptor._admit(method, context)
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                with identity_scope(identity):
                    result = inner(request, context)
                    if hasattr(result, "__aiter__"):
                        async for response in result:
                            yield response
                    else:
                        await result
            except Exception:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                interceptor._record(method, code, time.perf_counter() - start, identity)

        return wrapped

    def _record(self, method: str, code: grpc.StatusCode, elapsed: float, identity: Identity | None) -> None:
        RPC_CALLS.labels(method, code.name).inc()
        RPC_LATENCY.labels(method).observe(elapsed)
        if self.log_calls:
            actor = identity.actor if identity else ""
            log.info("rpc", method=method, code=code.name, actor=actor, duration_ms=round(elapsed * 1000, 3))


@dataclass
class Servicer:
    """One gRPC service to serve: its generated add_*_to_server function, the implementation and its full name."""

    add_to_server: Callable[[Any, Any], None]
    implementation: Any
    full_name: str  # e.g. trading.risk.v1.RiskService


class RpcServer:
    """An asyncio gRPC server on an mTLS port, every call authenticated and authorised, with health (NOT_SERVING until
    set_serving) and, only when `reflection` is on (a dev setting), reflection."""

    def __init__(
        self,
        servicers: Iterable[Servicer],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        security: ServerSecurity | None = None,
        log_calls: bool = True,
        reflection_enabled: bool = False,
        health_port: int | None = None,
    ) -> None:
        self.servicers = list(servicers)
        self.security = security or default_server_security()
        self.server = grpc.aio.server(
            interceptors=[ServerInterceptor(self.security.authenticator, log_calls)],
            options=[("grpc.max_metadata_size", TRANSPORT_METADATA_LIMIT)],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        for servicer in self.servicers:
            servicer.add_to_server(servicer.implementation, self.server)
        if reflection_enabled:
            names = [s.full_name for s in self.servicers]
            reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        self.port = self.server.add_secure_port(f"{host}:{port}", self.security.certificates.server_credentials())
        self.host = host
        # Kubernetes' gRPC probes cannot present a certificate: health alone (serving or not, nothing else) may be
        # served on a plaintext port of its own.
        self.health_server: grpc.aio.Server | None = None
        self.health_port: int | None = None
        if health_port is not None:
            self.health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            self.health_port = self.health_server.add_insecure_port(f"{host}:{health_port}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        await self.set_serving(False)

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *(s.full_name for s in self.servicers)]:
            await self.health.set(name, status)

    async def stop(self, grace_s: float = 5.0) -> None:
        await self.set_serving(False)
        await self.server.stop(grace_s)
        if self.health_server is not None:
            await self.health_server.stop(0)
        await self.security.authenticator.drain()


# -- client -------------------------------------------------------------------------------------------------------
class _CallDetails:
    """Adds the current trace context and the caller's access token to a call's metadata, and a default deadline."""

    def __init__(self, default_timeout_s: float, bearer: Callable[[], str | None] | None = None) -> None:
        self.default_timeout_s = default_timeout_s
        self.bearer = bearer

    def _details(self, client_call_details: Any) -> Any:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        metadata: list[tuple[str, Any]] = [*(client_call_details.metadata or []), *carrier.items()]
        token = self.bearer() if self.bearer is not None else None
        if token and not any(key == TOKEN_METADATA_KEY for key, _ in metadata):
            metadata.append((TOKEN_METADATA_KEY, BEARER + token))
        timeout = client_call_details.timeout if client_call_details.timeout is not None else self.default_timeout_s
        return grpc.aio.ClientCallDetails(
            client_call_details.method,
            timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )


# grpc.aio files each interceptor under ONE call type, so there is one per type.
class ClientInterceptor(_CallDetails, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStreamInterceptor(_CallDetails, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnaryInterceptor(_CallDetails, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, requests: Any) -> Any:
        return await continuation(self._details(client_call_details), requests)


class _StreamStreamInterceptor(_CallDetails, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, requests: Any) -> Any:
        return await continuation(self._details(client_call_details), requests)


def channel(
    target: str,
    default_timeout_s: float = 2.0,
    *,
    security: ClientSecurity | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """An mTLS channel presenting the caller's certificate (and the user's token, if any), whose calls carry trace
    context and time out after default_timeout_s unless told otherwise. When the certificate is renewed, new calls
    go over a new connection presenting the renewed one (RenewingChannel)."""
    security = security or default_client_security()

    def connect(material: TlsMaterial) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(
            target,
            material.channel_credentials(),
            options=list(options),
            interceptors=[
                kind(default_timeout_s, security.bearer)
                for kind in (
                    ClientInterceptor,
                    _UnaryStreamInterceptor,
                    _StreamUnaryInterceptor,
                    _StreamStreamInterceptor,
                )
            ],
        )

    return RenewingChannel(security.certificates, connect)


class RenewingChannel(grpc.aio.Channel):
    """A channel that follows its certificate: once the keeper holds a renewed certificate, the next call opens a
    channel presenting it (the previous one is closed after RENEWED_CHANNEL_GRACE_S, so calls in flight finish).
    A long-lived client (order-management's channel to risk) so never reconnects with an expired certificate."""

    RENEWED_CHANNEL_GRACE_S = 30.0

    def __init__(self, certificates: CertificateKeeper, connect: Callable[[TlsMaterial], grpc.aio.Channel]) -> None:
        self._certificates = certificates
        self._connect = connect
        self._material = certificates.current()
        self._channel = connect(self._material)
        self._retired: set[asyncio.Task[None]] = set()

    def current(self) -> grpc.aio.Channel:
        material = self._certificates.current()
        if material is not self._material:
            previous, self._material = self._channel, material
            self._channel = self._connect(material)
            task = asyncio.ensure_future(self._retire(previous))
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        return self._channel

    async def _retire(self, previous: grpc.aio.Channel) -> None:
        await asyncio.sleep(self.RENEWED_CHANNEL_GRACE_S)
        await previous.close()

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Following(self, "unary_unary", method, args, kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Following(self, "unary_stream", method, args, kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Following(self, "stream_unary", method, args, kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Following(self, "stream_stream", method, args, kwargs)

    async def close(self, grace: float | None = None) -> None:
        for task in list(self._retired):
            task.cancel()
        await self._channel.close(grace)

    async def __aenter__(self) -> RenewingChannel:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close(None)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.current().get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.current().wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current().channel_ready()


class _Following:
    """A stub's method on a RenewingChannel: each call goes over the channel of the current certificate."""

    def __init__(self, owner: RenewingChannel, kind: str, method: str, args: tuple[Any, ...], kwargs: Any) -> None:
        self._owner, self._kind, self._method, self._args, self._kwargs = owner, kind, method, args, kwargs
        self._bound: tuple[grpc.aio.Channel, Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        current = self._owner.current()
        if self._bound is None or self._bound[0] is not current:
            self._bound = (current, getattr(current, self._kind)(self._method, *self._args, **self._kwargs))
        return self._bound[1](*args, **kwargs)


def bearer_metadata(token: str) -> tuple[tuple[str, str]]:
    """Call metadata carrying a user's access token (for one call: `stub.Method(request, metadata=...)`)."""
    return ((TOKEN_METADATA_KEY, BEARER + token),)


async def health_status(
    target: str, service: str = "", timeout_s: float = 1.0, *, security: ClientSecurity | None = None
) -> str:
    """SERVING, NOT_SERVING, or UNREACHABLE."""
    async with channel(target, timeout_s, security=security) as health_channel:
        try:
            response = await health_pb2_grpc.HealthStub(health_channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.aio.AioRpcError:
            return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
