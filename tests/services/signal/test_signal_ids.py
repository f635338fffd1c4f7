"""Signal ids are derived, not random: a bar delivered again (the consumer crashed before committing it) yields the
same signal id, and so the same client order id at order-management; a different bar, model version, role, symbol
or strategy yields another."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from signal_service.app import SignalApp
from signal_service.config import SignalSettings
from signal_service.engine import signal_id
from trading.marketdata.v1 import marketdata_pb2 as M
from trading.signal.v1 import signal_pb2
from trading_datasets import close_panel
from trading_features import WARMUP_BARS
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher, replay
from trading_platform.settings import load_settings
from trading_platform.testing.waiting import eventually
from trading_platform.topics import lookup

DAY_NS = 86_400 * 10**9
START_NS = 1_262_563_200 * 10**9  # 2010-01-04


def test_the_signal_id_is_a_function_of_what_the_decision_is_about() -> None:
    base = signal_pb2.SignalGenerated(
        symbol="AAPL", strategy_id="trend", model_version="trend-ppo@1+abc", bar_id="bar-1", bar_ts=START_NS
    )
    same = signal_pb2.SignalGenerated()
    same.CopyFrom(base)
    same.bar_id = "bar-1-published-again"  # the same bar, republished under a new message id
    same.target_weight = 0.1  # decided again, maybe from another position: still the same decision
    assert signal_id(base) == signal_id(same)
    ids = {signal_id(base)}
    for name, value in [
        ("symbol", "MSFT"),
        ("strategy_id", "other"),
        ("model_version", "trend-ppo@2+def"),
        ("bar_ts", START_NS + DAY_NS),
        ("shadow", True),
    ]:
        changed = signal_pb2.SignalGenerated()
        changed.CopyFrom(base)
        setattr(changed, name, value)
        ids.add(signal_id(changed))
    assert len(ids) == 6


async def rewind(bootstrap: str, namespace: str, group: str, topic: str) -> None:
    """What a crash before the commit leaves: the group's committed offsets back at the beginning."""
    physical = namespace + lookup(topic).name
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(physical, p) for p in range(lookup(topic).partitions)]
        consumer.assign(partitions)
        await consumer.commit({tp: 0 for tp in partitions})
    finally:
        await consumer.stop()


@pytest.mark.integration
async def test_a_bar_delivered_again_after_a_crash_yields_the_same_signal_id(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    settings = load_settings(SignalSettings, kafka={"bootstrap_servers": kafka_bootstrap, "namespace": topic_namespace})
    closes = np.asarray(close_panel(["AAPL"], source="skfolio", start="2010-01-01", end="2010-12-31")[1])
    count = WARMUP_BARS + 10
    expected = count - WARMUP_BARS + 1

    async def signals() -> list[Any]:
        return [m.value async for m in replay(kafka_bootstrap, "signal.signals.v1", namespace=topic_namespace)]

    first = SignalApp(settings)
    await first.start()
    try:
        async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
            for t in range(count):
                bar = M.Bar(symbol="AAPL", interval_seconds=86400, close=float(closes[t, 0]))
                bar.envelope.CopyFrom(new_envelope("market-data", ts_event=START_NS + t * DAY_NS))
                await publisher.publish("marketdata.bars.v1", bar, key="AAPL")

            async def answered() -> bool:
                return len(await signals()) >= expected

            await eventually(answered, 30, "a signal for every bar after warm-up")
    finally:
        await first.stop()
    before = await signals()
    assert len(before) == expected

    await rewind(kafka_bootstrap, topic_namespace, first.consumer.group_id, "marketdata.bars.v1")
    second = SignalApp(settings)  # a new process: no handled ids, no features
    await second.start()
    try:

        async def answered_again() -> bool:
            return len(await signals()) >= 2 * expected

        await eventually(answered_again, 30, "the same bars answered again")
        await asyncio.sleep(0.5)
    finally:
        await second.stop()
    after = (await signals())[expected:]
    assert len(after) == expected
    assert [s.envelope.message_id for s in after] == [s.envelope.message_id for s in before]
    assert [s.bar_ts for s in after] == [START_NS + t * DAY_NS for t in range(WARMUP_BARS - 1, count)]
