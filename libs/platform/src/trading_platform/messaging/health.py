"""Whether the Kafka cluster answers a service: the probe behind the runner's health status.

A service whose broker is gone cannot publish its decisions or read its inputs, so the runner turns its gRPC health
NOT_SERVING while the probe fails and SERVING again once it answers (trading_platform.service). Producers and
consumers meanwhile retry with backoff on their own; nothing is dropped. The probe is one metadata round trip over
the service's own connection (and credentials), bounded by a timeout, on a client of its own.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.client import AIOKafkaClient

from trading_platform.messaging.connection import KafkaConnection, connection_of

PROBE_TIMEOUT_S = 2.0


class BusProbe:
    def __init__(self, connection: KafkaConnection | str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.connection = connection_of(connection)
        self.timeout_s = timeout_s
        self._client: AIOKafkaClient | None = None
        self.last_error = ""

    async def __call__(self) -> bool:
        """True when the cluster answered a metadata request within the timeout."""
        try:
            await asyncio.wait_for(self._round_trip(), self.timeout_s)
        except Exception as error:  # any failure to answer is "down"; the reason is kept for the log line
            self.last_error = f"{type(error).__name__}: {error}"[:300]
            await self._drop()
            return False
        self.last_error = ""
        return True

    async def _round_trip(self) -> None:
        if self._client is None:
            self._client = AIOKafkaClient(
                **self.connection.client_options(), client_id="health-probe", request_timeout_ms=2000
            )
            await self._client.bootstrap()
        metadata = await self._client.fetch_all_metadata()
        if not metadata.brokers():
            raise ConnectionError(f"no broker answered at {self.connection.bootstrap_servers}")

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 2)

    async def close(self) -> None:
        await self._drop()
