"""How a client reaches the Kafka cluster: bootstrap servers and its credentials (SASL/SCRAM), in one value.

Every aiokafka client of the platform (producer, consumer, admin) is built from a `KafkaConnection`, so a service
that authenticates does so on every connection it opens. A plain string is accepted where a connection is expected
and means a PLAINTEXT cluster without authentication (a developer's own broker); the platform's clusters, embedded
and in Kubernetes, require SASL/SCRAM-SHA-512 with one principal per service.

It also owns how a client starts and rides out a broker that goes away: `CLIENT_TIMEOUTS` (request timeout and retry
backoff, applied to every client) and `start_client`, which bounds a start and names the address when it fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiokafka.errors import KafkaConnectionError

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
SCRAM_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed
    sasl_mechanism: str = SCRAM_MECHANISM

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            raise ValueError("a Kafka connection needs bootstrap servers (host:port[,host:port])")
        if self.security_protocol != "PLAINTEXT" and not (self.username and self.password):
            raise ValueError(f"{self.security_protocol} needs a username and a password")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient)."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers}
        if self.security_protocol != "PLAINTEXT":
            options.update(
                security_protocol=self.security_protocol,
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return options

    def librdkafka_config(self) -> dict[str, str]:
        """The same connection for librdkafka clients (confluent-kafka, kcat's -X options)."""
        config = {"bootstrap.servers": self.bootstrap_servers}
        if self.security_protocol != "PLAINTEXT":
            config.update(
                {
                    "security.protocol": self.security_protocol,
                    "sasl.mechanism": self.sasl_mechanism,
                    "sasl.username": str(self.username),
                    "sasl.password": str(self.password),
                }
            )
        return config


def connection_of(target: KafkaConnection | str) -> KafkaConnection:
    """A KafkaConnection as it is, or a bootstrap string as an unauthenticated PLAINTEXT connection."""
    return target if isinstance(target, KafkaConnection) else KafkaConnection(target)


# How every client rides out a broker that goes away: a request unanswered for request_timeout_ms fails (a produce
# batch not delivered by then fails its futures), failed requests and metadata refreshes are retried every
# retry_backoff_ms. A broker restart shorter than the request timeout is absorbed.
CLIENT_TIMEOUTS: dict[str, int] = {"request_timeout_ms": 30_000, "retry_backoff_ms": 200}
START_TIMEOUT_S = 30.0  # how long start() keeps trying to reach the cluster before it gives up


class BrokerUnavailableError(RuntimeError):
    """The Kafka cluster did not answer a client's start within its bounded time."""


async def start_client(
    start: Callable[[], Awaitable[None]], connection: KafkaConnection, timeout_s: float = START_TIMEOUT_S
) -> None:
    """Start an aiokafka client (producer, consumer, admin), retrying with backoff while the cluster cannot be
    reached; after `timeout_s` raise BrokerUnavailableError naming the bootstrap address. Each attempt is bounded by
    the client's request timeout; only the bootstrap step is retried (aiokafka's start bootstraps first, and a failed
    bootstrap leaves the client as it was, so start() may be called again)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            await start()
            return
        except KafkaConnectionError as error:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerUnavailableError(
                    f"Kafka at {connection.bootstrap_servers} did not answer within {timeout_s:g} s ({error})"
                ) from error
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)
