"""What an attacker would try against a platform gRPC server, each refused with the right status before the handler
runs (nothing changes), with a short reason and a refusal recorded on the bus (security.refusals.v1), next to the
calls that must work. The server is the platform's: mTLS with certificates from the dev PKI, tokens verified
against the JWKS in Vault, revocations in Redis, the shipped access policy."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading.security.v1 import security_pb2
from trading_platform import tokens
from trading_platform.call_security import REFUSALS_TOPIC, RefusalPublisher
from trading_platform.identity import AUDIENCE, ISSUER, OPERATOR, RISK_OFFICER, TRADER, VIEWER, current_identity
from trading_platform.messaging import KafkaConnection, Publisher, ensure_topics, replay
from trading_platform.rpc import MAX_METADATA_BYTES, ClientSecurity, RpcServer, Servicer, channel
from trading_platform.testing.identities import TestIdentities

pytestmark = pytest.mark.integration
RISK = "trading.risk.v1.RiskService"


@dataclass
class RecordingRisk(risk_pb2_grpc.RiskServiceServicer):
    """A risk servicer that records every handler run and who it ran as."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def _record(self, name: str) -> None:
        caller = current_identity()
        self.calls.append((name, f"{caller.actor} via {caller.via}" if caller and caller.via else caller.actor))

    async def CheckOrder(self, request: Any, context: Any) -> risk_pb2.RiskDecision:
        self._record("CheckOrder")
        return risk_pb2.RiskDecision(client_order_id=request.client_order_id, approved=True)

    async def GetTradingState(self, request: Any, context: Any) -> risk_pb2.TradingStateResponse:
        self._record("GetTradingState")
        return risk_pb2.TradingStateResponse(state=risk_pb2.TRADING_STATE_ACTIVE)

    async def SetTradingState(self, request: Any, context: Any) -> risk_pb2.TradingStateResponse:
        self._record("SetTradingState")
        return risk_pb2.TradingStateResponse(state=request.state)


@dataclass
class Served:
    address: str
    servicer: RecordingRisk
    identities: TestIdentities
    kafka: KafkaConnection
    namespace: str

    async def refusals(self, expected: int, timeout_s: float = 15.0) -> list[security_pb2.AccessRefused]:
        """The refusals recorded on the bus, once `expected` of them are there (they are published in the
        background), and a moment more to catch any extra one."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [m.value async for m in replay(self.kafka, REFUSALS_TOPIC, namespace=self.namespace)]
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)


@pytest.fixture
async def served(
    grpc_identities: TestIdentities, kafka_connection: KafkaConnection, topic_namespace: str
) -> AsyncIterator[Served]:
    await ensure_topics(kafka_connection, [REFUSALS_TOPIC], namespace=topic_namespace)
    publisher = Publisher(kafka_connection, "risk", namespace=topic_namespace)
    await publisher.start()
    servicer = RecordingRisk()
    security = grpc_identities.server("risk", on_refusal=RefusalPublisher(publisher, "risk"))
    server = RpcServer(
        [Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, servicer, RISK)],
        security=security,
        reflection_enabled=True,
    )
    await server.start()
    await server.set_serving(True)
    try:
        yield Served(server.address, servicer, grpc_identities, kafka_connection, topic_namespace)
    finally:
        await server.stop(0)
        await publisher.stop()


async def call(address: str, security: ClientSecurity, method: str, **kwargs: Any) -> Any:
    async with channel(address, security=security) as open_channel:
        stub = risk_pb2_grpc.RiskServiceStub(open_channel)
        if method == "CheckOrder":
            return await stub.CheckOrder(risk_pb2.CheckOrderRequest(client_order_id="c-1"), **kwargs)
        if method == "SetTradingState":
            request = risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_HALTED, reason="test")
            return await stub.SetTradingState(request, **kwargs)
        return await stub.GetTradingState(risk_pb2.GetTradingStateRequest(), **kwargs)


def forged(payload: dict[str, Any], key: Any, kid: str, algorithm: str = "EdDSA") -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "mallory",
        "roles": [RISK_OFFICER],
        "sid": uuid.uuid4().hex,
        "typ": "access",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    return {**base, **overrides}


def tampered_roles(token: str) -> str:
    """The same signed token with its payload's roles rewritten (the signature no longer matches)."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["roles"] = [RISK_OFFICER]
    encoded = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def alg_none(ids: TestIdentities) -> str:
    return f"{b64({'alg': 'none', 'kid': ids.kid})}.{b64(claims())}."


def hs256_with_public_key(ids: TestIdentities) -> str:
    """The classic confusion: an HMAC signature keyed with the (public) verification key."""
    ids.publish_key()
    signing_input = f"{b64({'alg': 'HS256', 'kid': ids.kid})}.{b64(claims())}"
    secret = json.dumps(tokens.public_jwk(ids.signing_key, ids.kid)).encode()
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


ATTACKS: dict[str, tuple[Callable[[TestIdentities], str | None], grpc.StatusCode, str]] = {
    "no token": (lambda ids: None, grpc.StatusCode.UNAUTHENTICATED, "needs a user's access token"),
    "expired token": (
        lambda ids: ids.user_token("mallory", [RISK_OFFICER], ttl_s=60, now=time.time() - 3600),
        grpc.StatusCode.UNAUTHENTICATED,
        "token expired",
    ),
    "alg none": (alg_none, grpc.StatusCode.UNAUTHENTICATED, "algorithm not accepted"),
    "HS256 with the public key as secret": (
        hs256_with_public_key,
        grpc.StatusCode.UNAUTHENTICATED,
        "algorithm not accepted",
    ),
    "signed by another key under the published kid": (
        lambda ids: (ids.publish_key(), forged(claims(), tokens.generate_key(), ids.kid))[1],
        grpc.StatusCode.UNAUTHENTICATED,
        "signature invalid",
    ),
    "signed by an unpublished key": (
        lambda ids: forged(claims(), tokens.generate_key(), "not-published"),
        grpc.StatusCode.UNAUTHENTICATED,
        "unknown key",
    ),
    "wrong audience": (
        lambda ids: (ids.publish_key(), forged(claims(aud="another-system"), ids.signing_key, ids.kid))[1],
        grpc.StatusCode.UNAUTHENTICATED,
        "audience",
    ),
    "wrong issuer": (
        lambda ids: (ids.publish_key(), forged(claims(iss="someone-else"), ids.signing_key, ids.kid))[1],
        grpc.StatusCode.UNAUTHENTICATED,
        "issuer",
    ),
    "not an access token": (
        lambda ids: (ids.publish_key(), forged(claims(typ="refresh"), ids.signing_key, ids.kid))[1],
        grpc.StatusCode.UNAUTHENTICATED,
        "not an access token",
    ),
    "a refresh token used as an access token": (
        lambda ids: f"{uuid.uuid4().hex}.{secrets.token_urlsafe(32)}",  # the gateway's opaque <sid>.<random>
        grpc.StatusCode.INVALID_ARGUMENT,
        "malformed token",
    ),
    "a viewer's token with its roles rewritten": (
        lambda ids: tampered_roles(ids.user_token("mallory", [VIEWER])),
        grpc.StatusCode.UNAUTHENTICATED,
        "signature invalid",
    ),
    "wrong role": (
        lambda ids: ids.user_token("tracy", [TRADER, VIEWER]),
        grpc.StatusCode.PERMISSION_DENIED,
        "needs role risk-officer",
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_a_forged_missing_or_insufficient_token_is_refused_and_recorded(served: Served, attack: str) -> None:
    make_token, code, reason = ATTACKS[attack]
    security = served.identities.client("gateway", token=make_token(served.identities))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(served.address, security, "SetTradingState")
    assert refused.value.code() == code, refused.value.details()
    assert reason in refused.value.details()
    assert "Traceback" not in refused.value.details() and len(refused.value.details()) < 120
    assert served.servicer.calls == []  # the handler never ran: nothing changed
    [event] = await served.refusals(1)
    assert event.method == f"/{RISK}/SetTradingState"
    assert event.code == code.name and event.reason == refused.value.details()
    assert event.certificate == "gateway" and event.service == "risk"


async def test_a_revoked_session_is_refused_at_once(served: Served) -> None:
    ids = served.identities
    sid = uuid.uuid4().hex
    officer = ids.client("gateway", token=ids.user_token("rita", [RISK_OFFICER], session_id=sid))
    await call(served.address, officer, "SetTradingState")
    assert served.servicer.calls == [("SetTradingState", "user:rita via gateway")]
    ids.revoke(sid)  # logout at the gateway
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(served.address, officer, "SetTradingState")
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.details() == "session revoked"
    assert len(served.servicer.calls) == 1
    [event] = await served.refusals(1)
    assert event.actor == "user:rita" and event.reason == "session revoked"


async def test_only_order_management_may_ask_for_a_risk_decision(served: Served) -> None:
    ids = served.identities
    decision = await call(served.address, ids.client("order-management"), "CheckOrder")
    assert decision.approved and served.servicer.calls == [("CheckOrder", "service:order-management")]
    for caller, token in (("signal", None), ("gateway", ids.user_token("admin", [RISK_OFFICER, OPERATOR]))):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(served.address, ids.client(caller, token=token), "CheckOrder")
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert len(served.servicer.calls) == 1
    events = await served.refusals(2)
    assert sorted(event.actor for event in events) == ["service:signal", "user:admin"]


async def test_without_a_client_certificate_of_the_platform_ca_there_is_no_connection(served: Served) -> None:
    ca_only = served.identities.certificate("risk").current().ca_chain
    foreign = served.identities.certificate("signal").current()
    attempts = {
        "no certificate": grpc.ssl_channel_credentials(ca_only),
        # a certificate the platform CA did not sign: the signal certificate's key, self-presented without its CA
        "wrong CA": grpc.ssl_channel_credentials(foreign.certificate, foreign.private_key, foreign.certificate),
    }
    for credentials in attempts.values():
        async with grpc.aio.secure_channel(served.address, credentials) as open_channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await risk_pb2_grpc.RiskServiceStub(open_channel).GetTradingState(
                    risk_pb2.GetTradingStateRequest(), timeout=3
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake fails
    async with grpc.aio.insecure_channel(served.address) as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await risk_pb2_grpc.RiskServiceStub(plaintext).GetTradingState(risk_pb2.GetTradingStateRequest(), timeout=3)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert served.servicer.calls == []


async def test_oversize_metadata_and_duplicate_tokens_are_refused(served: Served) -> None:
    ids = served.identities
    viewer = ids.client("gateway", token=ids.user_token("vera", [VIEWER]))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(served.address, viewer, "GetTradingState", metadata=(("x-padding", "a" * MAX_METADATA_BYTES),))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "request metadata too large"
    two = tuple(("authorization", f"Bearer {ids.user_token(name, [VIEWER])}") for name in ("vera", "victor"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(served.address, ids.client("gateway"), "GetTradingState", metadata=two)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "more than one authorization header"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(served.address, ids.client("gateway"), "GetTradingState", metadata=(("authorization", "Basic abc"),))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert served.servicer.calls == []
    assert len(await served.refusals(3)) == 3


async def test_an_unknown_method_is_refused(served: Served) -> None:
    ids = served.identities
    security = ids.client("gateway", token=ids.user_token("root", [RISK_OFFICER, OPERATOR, VIEWER]))
    async with channel(served.address, security=security) as open_channel:
        drop = open_channel.unary_unary(f"/{RISK}/DropAllLimits")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await drop(b"")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "unknown method"
    [event] = await served.refusals(1)
    assert event.method == f"/{RISK}/DropAllLimits" and event.code == "INVALID_ARGUMENT"


async def reflect(address: str, security: ClientSecurity) -> tuple[grpc.StatusCode, str, list[str]]:
    """One list_services exchange on the reflection stream: its status, details and the services listed."""
    async with channel(address, security=security) as open_channel:
        stream = reflection_pb2_grpc.ServerReflectionStub(open_channel).ServerReflectionInfo()
        with contextlib.suppress(Exception):  # a refused stream may be closed before the request is written
            await stream.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            await stream.done_writing()
        names = []
        with contextlib.suppress(grpc.aio.AioRpcError):
            response = await stream.read()
            if response is not grpc.aio.EOF:
                names = [service.name for service in response.list_services_response.service]
        return await stream.code(), await stream.details(), names


async def test_streaming_calls_are_authorised_too(served: Served) -> None:
    """Reflection (a bidirectional stream) is in the policy for operators only."""
    ids = served.identities
    code, _, names = await reflect(served.address, ids.client("gateway", token=ids.user_token("olga", [OPERATOR])))
    assert code == grpc.StatusCode.OK and RISK in names
    code, details, names = await reflect(served.address, ids.client("gateway", token=ids.user_token("vera", [VIEWER])))
    assert code == grpc.StatusCode.PERMISSION_DENIED and names == []
    assert "operator" in details
    [event] = await served.refusals(1)
    assert event.method.endswith("ServerReflectionInfo") and event.actor == "user:vera"


async def test_reflection_is_off_unless_turned_on(grpc_identities: TestIdentities) -> None:
    server = RpcServer([Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, RecordingRisk(), RISK)])
    await server.start()
    try:
        operator = grpc_identities.client("gateway", token=grpc_identities.user_token("olga", [OPERATOR]))
        code, details, names = await reflect(server.address, operator)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details == "unknown method" and names == []
    finally:
        await server.stop(0)


async def test_the_plaintext_health_port_serves_health_and_nothing_else(grpc_identities: TestIdentities) -> None:
    """For Kubernetes' probes, which cannot present a certificate: health only, never the service."""
    servicer = RecordingRisk()
    server = RpcServer([Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, servicer, RISK)], health_port=0)
    await server.start()
    await server.set_serving(True)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.health_port}") as plaintext:
            reply = await health_pb2_grpc.HealthStub(plaintext).Check(health_pb2.HealthCheckRequest(service=RISK))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await risk_pb2_grpc.RiskServiceStub(plaintext).CheckOrder(risk_pb2.CheckOrderRequest())
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert servicer.calls == []
    finally:
        await server.stop(0)
