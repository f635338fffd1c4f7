"""pytest plugin `trading`: real Kafka, Redis and Vault endpoints for tests, and per-test isolation.

Endpoints come, in this order, from:
1. environment variables: TRADING_TEST_KAFKA_BOOTSTRAP, TRADING_TEST_REDIS_URL, TRADING_TEST_VAULT_ADDR with
   TRADING_TEST_VAULT_TOKEN (an external stack, e.g. a staging cluster's); a cluster that authenticates also takes
   TRADING_TEST_KAFKA_USERNAME and TRADING_TEST_KAFKA_PASSWORD (a principal allowed everything the tests touch);
2. testcontainers (Kafka, Redis and Vault images) when a Docker engine answers;
3. the embedded processes of trading_platform.devstack on free ports in a temporary folder: Apache Kafka (KRaft),
   Redis, OpenBao.
TRADING_TEST_BACKEND=env|testcontainers|embedded forces one. Each test gets its own topic namespace and Redis key
prefix, so tests never see each other's messages.

gRPC is authenticated in tests as in production (trading_platform.rpc). `grpc_identities` issues service
certificates from the dev PKI of the test Vault and user tokens signed by a key published where the gateway
publishes its JWKS (trading_platform.testing.identities). Every test's process defaults are set lazily (nothing
starts unless a test builds a server or a channel): a server is `risk` with the real authenticator, a client is
`order-management` (the in-process services the tests drive are its callers) with no user token; a test acting as a
user passes `grpc_identities.client(token=grpc_identities.user_token(roles=[...]))` or the token's metadata.

The session's shared embedded broker runs without authentication (`DevStack(secure=False)`): every test's topics
live in its own namespace, which ACLs written for the platform's topic names would not cover. Authentication and
the ACLs are exercised where the platform runs as `make up` runs it (the end-to-end stacks) and by the tests of
tests/platform/test_kafka_security.py, each on a secure broker of its own.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from trading_platform import rpc
from trading_platform.devstack import DevStack, StackPorts, free_port
from trading_platform.messaging.connection import KafkaConnection
from trading_platform.testing.identities import TestIdentities


@dataclass(frozen=True)
class VaultEndpoint:
    address: str
    token: str


@dataclass(frozen=True)
class TestStack:
    backend: str
    kafka_bootstrap: str
    redis_url: str
    vault: VaultEndpoint
    kafka: KafkaConnection  # what tests connect with (bootstrap and, on an authenticating cluster, credentials)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _testcontainers_stack() -> Iterator[TestStack]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer
    from testcontainers.vault import VaultContainer

    with KafkaContainer() as kafka, RedisContainer() as redis_container, VaultContainer() as vault:
        redis_url = f"redis://{redis_container.get_container_host_ip()}:{redis_container.get_exposed_port(6379)}/0"
        yield TestStack(
            "testcontainers",
            kafka.get_bootstrap_server(),
            redis_url,
            VaultEndpoint(vault.get_connection_url(), vault.root_token),
            KafkaConnection(kafka.get_bootstrap_server()),
        )


@contextlib.contextmanager
def _embedded_stack(run_dir: Path) -> Iterator[TestStack]:
    stack = DevStack(run_dir, StackPorts(kafka=free_port(), redis=free_port(), vault=free_port()), secure=False)
    try:
        endpoints = stack.up()
        yield TestStack(
            "embedded",
            endpoints.kafka_bootstrap,
            endpoints.redis_url,
            VaultEndpoint(endpoints.vault_addr, endpoints.vault_token()),
            endpoints.kafka_admin(),
        )
    finally:
        stack.down()


@pytest.fixture(scope="session")
def trading_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestStack]:
    """The session's Kafka, Redis and Vault (see the module docstring for where they come from)."""
    backend = os.environ.get("TRADING_TEST_BACKEND", "")
    if backend in ("", "env") and os.environ.get("TRADING_TEST_KAFKA_BOOTSTRAP"):
        missing = [
            k
            for k in ("TRADING_TEST_REDIS_URL", "TRADING_TEST_VAULT_ADDR", "TRADING_TEST_VAULT_TOKEN")
            if not os.environ.get(k)
        ]
        if missing:
            raise pytest.UsageError(f"TRADING_TEST_KAFKA_BOOTSTRAP is set but {', '.join(missing)} is not")
        username = os.environ.get("TRADING_TEST_KAFKA_USERNAME")
        connection = KafkaConnection(
            os.environ["TRADING_TEST_KAFKA_BOOTSTRAP"],
            "SASL_PLAINTEXT" if username else "PLAINTEXT",
            username,
            os.environ.get("TRADING_TEST_KAFKA_PASSWORD"),
        )
        yield TestStack(
            "env",
            os.environ["TRADING_TEST_KAFKA_BOOTSTRAP"],
            os.environ["TRADING_TEST_REDIS_URL"],
            VaultEndpoint(os.environ["TRADING_TEST_VAULT_ADDR"], os.environ["TRADING_TEST_VAULT_TOKEN"]),
            connection,
        )
        return
    if backend == "testcontainers" or (backend == "" and _docker_answers()):
        with _testcontainers_stack() as stack:
            yield stack
        return
    with _embedded_stack(tmp_path_factory.mktemp("devstack")) as stack:
        yield stack


@pytest.fixture(scope="session")
def kafka_bootstrap(trading_stack: TestStack) -> str:
    return trading_stack.kafka_bootstrap


@pytest.fixture(scope="session")
def kafka_connection(trading_stack: TestStack) -> KafkaConnection:
    return trading_stack.kafka


@pytest.fixture(scope="session")
def redis_url(trading_stack: TestStack) -> str:
    return trading_stack.redis_url


@pytest.fixture(scope="session")
def vault_endpoint(trading_stack: TestStack) -> VaultEndpoint:
    return trading_stack.vault


@pytest.fixture
def topic_namespace() -> str:
    """A prefix for every topic this test touches (pass it as `namespace=` to Publisher/Consumer)."""
    return f"t{uuid.uuid4().hex[:10]}."


# Fast group joins and failure detection for tests (pass as Consumer(group_options=FAST_GROUP_OPTIONS)).
FAST_GROUP_OPTIONS = {
    "session_timeout_ms": 2000,
    "heartbeat_interval_ms": 200,
    "rebalance_timeout_ms": 2000,
    "fetch_max_wait_ms": 500,
}


@pytest.fixture
def redis_namespace() -> str:
    """A prefix for every Redis key this test touches."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def grpc_identities(trading_stack: TestStack) -> TestIdentities:
    """Service certificates and user tokens for gRPC calls (see trading_platform.testing.identities)."""
    return TestIdentities(trading_stack.vault.address, trading_stack.vault.token, trading_stack.redis_url)


@pytest.fixture(autouse=True)
def _grpc_security_defaults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Default gRPC security for the test (built on first use, so tests without gRPC start nothing)."""

    def identities() -> TestIdentities:
        return request.getfixturevalue("grpc_identities")  # type: ignore[no-any-return]

    rpc.configure(server=lambda: identities().server(), client=lambda: identities().client())
    yield
    rpc.reset_defaults()
