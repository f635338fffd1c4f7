"""The read model's one consumer of the bus, and its fan-out to the live stream.

Two platform Consumers (trading_platform.messaging) in consumer groups of this process alone (every gateway
instance is handed every partition, like risk's book): one reads the state topics (`model.FULL`: compacted, or small
and kept forever) from their beginning, the other the event topics (`model.RECENT`) from `history_s` ago. Every
record is folded by `ReadModel.apply`, and its updates are published on the `Fanout`. A record that does not decode,
or that the fold cannot take, goes to its topic's `.dlq` by the platform's dead-lettering, and the consumer keeps
going. Handled message ids are remembered in a bounded store, so a redelivered record is not folded twice.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import OrderedDict
from collections.abc import Sequence

from trading_platform.messaging import ConsumedMessage, Consumer, KafkaConnection, Publisher
from trading_platform.messaging.replay import end_offsets
from trading_platform.observability import get_logger

from gateway_service.readmodel.fanout import Fanout, Subscription
from gateway_service.readmodel.model import FULL, RECENT, ReadModel

log = get_logger("gateway.readmodel")
GROUP_PREFIX = "gateway-readmodel"


class BoundedIdempotencyStore:
    """The most recent `cap` handled message ids (a redelivery comes soon after the first delivery)."""

    def __init__(self, cap: int = 200_000) -> None:
        self.cap = cap
        self._ids: OrderedDict[str, None] = OrderedDict()

    async def seen(self, message_id: str) -> bool:
        return message_id in self._ids

    async def mark(self, message_id: str) -> None:
        self._ids[message_id] = None
        if len(self._ids) > self.cap:
            self._ids.popitem(last=False)


class Feed:
    """Keeps a ReadModel current from the bus and fans its updates out (`subscribe()`)."""

    def __init__(
        self,
        connection: KafkaConnection,
        model: ReadModel,
        fanout: Fanout,
        *,
        namespace: str = "",
        group_options: dict[str, int] | None = None,
        full: Sequence[str] = FULL,
        recent: Sequence[str] = RECENT,
    ) -> None:
        self.connection = connection
        self.model = model
        self.fanout = fanout
        self.namespace = namespace
        group = f"{GROUP_PREFIX}-{socket.gethostname()}-{time.time_ns()}"
        self.publisher = Publisher(connection, "gateway-readmodel", namespace=namespace)
        store = BoundedIdempotencyStore()
        common = {
            "publisher": self.publisher,
            "idempotency": store,
            "namespace": namespace,
            "group_options": group_options,
            "auto_offset_reset": "earliest",
        }
        history_s = model.caps.history_s
        self.consumers = [
            Consumer(connection, f"{group}-state", list(full), self._on_message, **common),  # type: ignore[arg-type]
            Consumer(
                connection,
                f"{group}-events",
                list(recent),
                self._on_message,
                start_at_ms=lambda: int(time.time() * 1000) - history_s * 1000,
                **common,  # type: ignore[arg-type]
            ),
        ]
        self.topics = [*full, *recent]
        self._tasks: list[asyncio.Task[None]] = []

    async def _on_message(self, message: ConsumedMessage) -> None:
        for channel, data in self.model.apply(message):
            self.fanout.publish(channel, data)
        # Let the subscribers take what was queued before the next record of the batch (a batch is up to 100
        # records handled without a pause otherwise; a live client must not be dropped for a burst it could take).
        await asyncio.sleep(0)

    async def start(self) -> None:
        await self.publisher.start()
        for consumer in self.consumers:
            await consumer.start()
        self._tasks = [asyncio.create_task(consumer.run()) for consumer in self.consumers]
        log.info("read model consuming", topics=len(self.topics), history_s=self.model.caps.history_s)

    async def stop(self) -> None:
        self.fanout.close()
        if self._tasks:  # stop() waits for a running loop to end: only loops that were started
            for consumer in self.consumers:
                await consumer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for consumer in self.consumers:
            await consumer.close()
        await self.publisher.stop()

    def subscribe(self, channels: Sequence[str]) -> Subscription:
        """The live updates of these channels: `async for channel, data in feed.subscribe([...])`."""
        return self.fanout.subscribe(channels)

    def health(self) -> str | None:
        for consumer in self.consumers:
            problem = consumer.health()
            if problem:
                return problem
        return None

    async def backlog(self) -> int:
        """Records of the read topics not yet folded (a probe of how far behind the model is)."""
        physical = [self.namespace + name for name in self.topics]
        ends = await end_offsets(self.connection, physical)
        behind = 0
        for consumer in self.consumers:
            client = consumer._consumer
            for tp in client.assignment():
                end = ends.get(tp.topic, {}).get(tp.partition, 0)
                behind += max(0, end - await client.position(tp))
        return behind
