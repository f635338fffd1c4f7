"""tradectl deploy's shadow-results check over the real Kafka-protocol broker: the shadow colour's deterministic
outputs (shadow.oms.commands.v1, keyed by client order id) are compared with live's since the shadow started."""

from __future__ import annotations

import time

import pytest
from tradectl.deploy import Target, shadow_agreement
from trading.oms.v1 import oms_pb2
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher, ensure_topics

pytestmark = pytest.mark.integration


async def commands(bootstrap: str, namespace: str, shadow: bool, ids: list[str]) -> None:
    async with Publisher(bootstrap, "test", namespace=namespace, shadow=shadow) as publisher:
        for cid in ids:
            command = oms_pb2.OrderCommand(
                envelope=new_envelope("order-management"), submit_order=oms_pb2.SubmitOrder(client_order_id=cid)
            )
            await publisher.publish("oms.commands.v1", command, key=cid)


async def test_shadow_agreement(kafka_bootstrap: str, topic_namespace: str) -> None:
    await ensure_topics(kafka_bootstrap, ["oms.commands.v1"], namespace=topic_namespace)
    await ensure_topics(kafka_bootstrap, ["oms.commands.v1"], namespace=topic_namespace, shadow=True)
    target = Target("unused", kafka_bootstrap, topic_namespace)
    await commands(kafka_bootstrap, topic_namespace, False, ["old-1"])  # before the shadow started: not compared
    since = time.time()
    await commands(kafka_bootstrap, topic_namespace, False, ["a", "b", "c", "d"])

    ok, detail = await shadow_agreement(target, "order-management", since, 0.9)
    assert not ok and "shadow wrote nothing" in detail and "live wrote 4" in detail

    await commands(kafka_bootstrap, topic_namespace, True, ["a", "b", "c", "x"])
    ok, detail = await shadow_agreement(target, "order-management", since, 0.9)
    assert not ok and "75% of 4" in detail
    ok, detail = await shadow_agreement(target, "order-management", since, 0.7)
    assert ok

    ok, detail = await shadow_agreement(target, "market-data", since, 0.9)
    assert ok and "no deterministic output" in detail
