"""Creating the registry's topics (ensure_topics): partitions and retention as the topic registry declares them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from trading_platform.messaging.connection import (
    CLIENT_TIMEOUTS,
    START_TIMEOUT_S,
    KafkaConnection,
    connection_of,
    start_client,
)
from trading_platform.messaging.names import TopicNames
from trading_platform.topics import Topic, lookup


async def ensure_topics(
    connection: KafkaConnection | str,
    names: Iterable[str],
    *,
    namespace: str = "",
    shadow: bool = False,
    replication_factor: int = 1,
    start_timeout_s: float = START_TIMEOUT_S,
) -> list[str]:
    """Create registry topics that do not exist yet (partitions, retention). Returns the names it created."""
    target = connection_of(connection)
    topic_names = TopicNames(namespace, shadow)
    wanted: dict[str, Topic] = {}
    for name in names:
        topic = lookup(name)
        wanted[topic_names.physical(name)] = topic
        if shadow:
            wanted[topic_names.physical_input(name)] = topic
    admin = AIOKafkaAdminClient(**target.client_options(), **CLIENT_TIMEOUTS, client_id="ensure-topics")
    await start_client(admin.start, target, start_timeout_s)
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=physical,
                num_partitions=topic.partitions,
                replication_factor=replication_factor,
                topic_configs={"retention.ms": str(topic.retention_ms)},
            )
            for physical, topic in wanted.items()
            if physical not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()
