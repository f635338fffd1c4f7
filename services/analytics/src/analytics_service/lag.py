"""Consumer lag of the platform's groups, from the Kafka admin API: each group's committed offsets against the end
offsets of the partitions it committed (trading_platform.messaging.replay.end_offsets). A group that committed
nothing yet has no lag to report."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Gauge
from trading_platform.messaging.connection import CLIENT_TIMEOUTS, KafkaConnection, start_client
from trading_platform.messaging.replay import end_offsets

LAG = Gauge("analytics_consumer_lag", "records a consumer group is behind the end of its topics", ["group"])


class LagReader:
    def __init__(self, connection: KafkaConnection, groups: tuple[str, ...], namespace: str = "") -> None:
        self.connection, self.groups, self.namespace = connection, groups, namespace
        self._admin: AIOKafkaAdminClient | None = None

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(**self.connection.client_options(), **CLIENT_TIMEOUTS)
        await start_client(self._admin.start, self.connection)

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.close()

    async def lags(self) -> dict[str, int]:
        """Group (its name without the namespace) -> records behind, summed over its partitions."""
        assert self._admin is not None
        committed: dict[str, dict[tuple[str, int], int]] = {}
        for group in self.groups:
            offsets = await self._admin.list_consumer_group_offsets(self.namespace + group)
            committed[group] = {
                (tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0
            }
        topics = {topic for offsets in committed.values() for topic, _ in offsets}
        ends = await end_offsets(self.connection, topics) if topics else {}
        result = {}
        for group, offsets in committed.items():
            if not offsets:
                continue
            behind = sum(
                max(0, ends.get(topic, {}).get(partition, offset) - offset)
                for (topic, partition), offset in offsets.items()
            )
            result[group] = behind
            LAG.labels(group).set(behind)
        return result
