"""Creating the registry's topics (ensure_topics): partitions, retention and compaction as the topic registry declares
them, and the replication factor and min.insync.replicas the cluster supports (never a fixed 1: a production cluster
of three brokers gets 3 and 2). In Kubernetes the topics exist already (Strimzi KafkaTopics), and this creates
nothing."""

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
from trading_platform.topics import Topic, lookup, replication


async def ensure_topics(
    connection: KafkaConnection | str,
    names: Iterable[str],
    *,
    namespace: str = "",
    shadow: bool = False,
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
        if all(physical in existing for physical in wanted):
            return []
        replicas, min_insync = replication(len((await admin.describe_cluster())["brokers"]))
        new = [
            NewTopic(
                name=physical,
                num_partitions=topic.partitions,
                replication_factor=replicas,
                topic_configs=topic.config(min_insync),
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
