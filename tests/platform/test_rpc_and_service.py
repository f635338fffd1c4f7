"""gRPC server (mTLS, health, authorisation by the access policy, trace propagation) and the service runner."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.clock import LiveClock, SimulatedClock
from trading_platform.identity import RISK_OFFICER, VIEWER, current_identity
from trading_platform.rpc import RpcServer, Servicer, channel, health_status
from trading_platform.testing.identities import TestIdentities
from trading_platform.testing.plugin import VaultEndpoint

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def tracing() -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))


class StateServicer(risk_pb2_grpc.RiskServiceServicer):
    async def GetTradingState(self, request, context):
        caller = current_identity()
        return risk_pb2.TradingStateResponse(state=risk_pb2.TRADING_STATE_ACTIVE, reason=caller.actor if caller else "")

    async def SetTradingState(self, request, context):
        return risk_pb2.TradingStateResponse(state=request.state, reason="changed")


async def test_server_health_policy_and_trace_propagation(grpc_identities: TestIdentities) -> None:
    server = RpcServer(
        [Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, StateServicer(), "trading.risk.v1.RiskService")],
        port=0,
    )
    await server.start()
    try:
        assert await health_status(server.address) == "NOT_SERVING"
        await server.set_serving(True)
        assert await health_status(server.address, "trading.risk.v1.RiskService") == "SERVING"

        tracer = trace.get_tracer("test")
        viewer = grpc_identities.client(token=grpc_identities.user_token("vera", [VIEWER]))
        async with channel(server.address, security=viewer) as viewer_channel:
            stub = risk_pb2_grpc.RiskServiceStub(viewer_channel)
            with tracer.start_as_current_span("caller") as caller:
                response = await stub.GetTradingState(risk_pb2.GetTradingStateRequest())
            assert response.state == risk_pb2.TRADING_STATE_ACTIVE
            assert response.reason == "user:vera"  # the handler runs as the token's user
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.SetTradingState(risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_HALTED))
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "risk-officer" in denied.value.details()
        officer = grpc_identities.client(token=grpc_identities.user_token("rita", [RISK_OFFICER]))
        async with channel(server.address, security=officer) as officer_channel:
            changed = await risk_pb2_grpc.RiskServiceStub(officer_channel).SetTradingState(
                risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_HALTED)
            )
            assert changed.reason == "changed"
        server_spans = [
            s for s in EXPORTER.get_finished_spans() if s.name == "trading.risk.v1.RiskService/GetTradingState"
        ]
        assert server_spans and server_spans[-1].context.trace_id == caller.get_span_context().trace_id
        assert server_spans[-1].parent is not None
    finally:
        await server.stop(0)
    assert await health_status(server.address, timeout_s=0.3) == "UNREACHABLE"


def test_clocks() -> None:
    clock = SimulatedClock(1_000)
    assert clock.now_ns() == 1_000 and clock.advance(500) == 1_500
    with pytest.raises(ValueError):
        clock.set(10)
    assert abs(LiveClock().now_ns() - time.time_ns()) < 1_000_000_000


EXAMPLE_SERVICE = """
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.rpc import Servicer
from trading_platform.service import ServiceParts, main
from trading_platform.settings import ServiceSettings

class Stopper:
    async def start(self): print("component started", flush=True)
    async def stop(self): print("component drained", flush=True)

async def build(settings):
    return ServiceParts(components=[Stopper()], servicers=[Servicer(
        risk_pb2_grpc.add_RiskServiceServicer_to_server, risk_pb2_grpc.RiskServiceServicer(),
        "trading.risk.v1.RiskService")])

main(ServiceSettings, build)
"""


def service_env(vault_endpoint: VaultEndpoint, redis_url: str, kafka_bootstrap: str, name: str) -> dict[str, str]:
    """A service's environment: its certificate comes from the test Vault's PKI, its health follows the broker."""
    return {
        **os.environ,
        "TRADING_SERVICE_NAME": name,
        "TRADING_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TRADING_VAULT__ADDR": vault_endpoint.address,
        "TRADING_VAULT__TOKEN": vault_endpoint.token,
        "TRADING_REDIS__URL": redis_url,
    }


async def test_service_runner_starts_reports_ready_and_stops_cleanly_on_sigterm(
    tmp_path: Path, kafka_bootstrap: str, vault_endpoint: VaultEndpoint, redis_url: str, grpc_identities: TestIdentities
) -> None:
    from trading_platform.devstack import free_port

    port = free_port()
    env = {
        **service_env(vault_endpoint, redis_url, kafka_bootstrap, "risk"),
        "TRADING_GRPC__PORT": str(port),
        "TRADING_TELEMETRY__SPANS_FILE": str(tmp_path / "spans.jsonl"),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", EXAMPLE_SERVICE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and await health_status(f"127.0.0.1:{port}") != "SERVING":
            await asyncio.sleep(0.1)
        assert await health_status(f"127.0.0.1:{port}") == "SERVING"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert stdout.splitlines() == ["component started", "component drained"]
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert events[0] == "service ready" and events[-1] == "service stopped"


def test_service_with_bad_config_exits_2_naming_the_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADING_")}
    env["TRADING_SERVICE_NAME"] = "example"
    result = subprocess.run(
        [sys.executable, "-c", EXAMPLE_SERVICE], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "TRADING_KAFKA__BOOTSTRAP_SERVERS is required" in result.stderr


@pytest.mark.parametrize(
    ("name", "vault", "says"),
    [
        ("risk", False, "TRADING_VAULT__ADDR is required"),  # no Vault, no certificate: no start
        ("example", True, "cannot serve gRPC"),  # no PKI role issues an `example` certificate
    ],
)
def test_a_service_without_a_certificate_does_not_start(
    name: str, vault: bool, says: str, vault_endpoint: VaultEndpoint, redis_url: str, kafka_bootstrap: str
) -> None:
    env = service_env(vault_endpoint, redis_url, kafka_bootstrap, name)
    if not vault:
        env = {k: v for k, v in env.items() if not k.startswith("TRADING_VAULT__")}
    result = subprocess.run(
        [sys.executable, "-c", EXAMPLE_SERVICE], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert says in result.stderr
    assert "component started" not in result.stdout
