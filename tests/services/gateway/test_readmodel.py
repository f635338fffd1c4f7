"""The gateway's read model over the real broker: records published to Kafka are folded into the tables the routes
serve (an order's lineage joined from five topics), live updates reach subscribers, a malformed record goes to its
topic's dead letters while the consumer carries on, and the caps evict the oldest rows."""

from __future__ import annotations

import asyncio

import pytest
from gateway_service.readmodel import DROPPED, Caps
from trading.oms.v1 import oms_pb2
from trading_platform.messaging import replay

from tests.services.gateway.readmodel_helpers import (
    OrderPath,
    alert,
    publisher_of,
    running_feed,
    start_of_day,
    wait_until,
)

pytestmark = pytest.mark.integration


async def test_an_order_path_published_to_the_broker_is_folded_with_its_lineage(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    async with (
        running_feed(kafka_bootstrap, topic_namespace) as feed,
        publisher_of(kafka_bootstrap, topic_namespace) as publisher,
    ):
        model = feed.model
        path = OrderPath("AAPL")
        await publisher.publish("risk.equity.v1", start_of_day("100000", "0"), key="_equity")
        await path.publish(publisher)
        await wait_until(
            lambda: (
                model.execution_orders.get(path.client_order_id) is not None
                and "AAPL" in model.positions
                and len(model.order_events.get(path.client_order_id, [])) == 4
            ),
            what="the order path folded",
        )
        detail = model.lineage(path.client_order_id)
        assert detail is not None
        assert detail["order"]["status"] == "FILLED"
        assert detail["order"]["filled_quantity"] == "10"
        lineage = detail["lineage"]
        assert lineage["signal"]["signal_id"] == path.signal_id
        assert lineage["signal"]["model_version"] == "3"
        assert lineage["signal"]["feature_hash"] == "ab" * 32
        assert lineage["signal"]["target_weight"] == 0.25
        assert lineage["risk_decision"]["approved"] is True
        assert lineage["risk_decision"]["reason_code"] == "APPROVED"
        assert [e["event_type"] for e in lineage["events"]] == ["INITIALIZED", "SUBMITTED", "ACCEPTED", "FILLED"]
        assert lineage["broker_order_id"] == path.broker_order_id
        assert [(f["fill_id"], f["quantity"], f["price"]) for f in lineage["fills"]] == [(path.fill_id, "10", "101.25")]
        assert lineage["execution_quality"]["slippage_bps"] == 1.5
        # The equity is the start of day plus the book's P&L since (12.5 unrealized on the new position).
        assert model.account()["equity"] == "100012.5"
        assert model.equity.values().__next__()["source"] == "start_of_day"


async def test_subscribers_get_each_update_as_it_is_folded(kafka_bootstrap: str, topic_namespace: str) -> None:
    async with (
        running_feed(kafka_bootstrap, topic_namespace) as feed,
        publisher_of(kafka_bootstrap, topic_namespace) as publisher,
    ):
        orders = feed.subscribe(["orders", "fills"])
        alerts = feed.subscribe(["alerts"])
        path = OrderPath("MSFT")
        await path.publish(publisher)
        await publisher.publish("analytics.alerts.v1", alert("slippage_high", "MSFT"), key="slippage_high|MSFT")

        async def first(subscription: object, n: int) -> list[tuple[str, dict[str, object]]]:
            got = []
            async for update in subscription:  # type: ignore[attr-defined]
                got.append(update)
                if len(got) == n:
                    break
            return got

        order_updates = await asyncio.wait_for(first(orders, 5), 20)
        assert [c for c, _ in order_updates] == ["orders", "orders", "orders", "orders", "fills"]
        assert order_updates[-2][1]["status"] == "FILLED"
        assert order_updates[-1][1]["fill_id"] == path.fill_id
        assert orders.last_seq > 0
        ((channel, data),) = await asyncio.wait_for(first(alerts, 1), 20)
        assert (channel, data["rule"], data["status"]) == ("alerts", "slippage_high", "FIRING")


async def test_a_malformed_record_is_dead_lettered_and_the_consumer_keeps_going(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    from aiokafka import AIOKafkaProducer

    async with (
        running_feed(kafka_bootstrap, topic_namespace) as feed,
        publisher_of(kafka_bootstrap, topic_namespace) as publisher,
    ):
        raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await raw.start()
        try:
            await raw.send_and_wait(f"{topic_namespace}oms.events.v1", b"\xff\x00 not an OrderEvent", key=b"co-bad")
        finally:
            await raw.stop()
        path = OrderPath("NVDA")
        await path.publish(publisher, fill=False)
        await wait_until(
            lambda: (o := feed.model.orders.get(path.client_order_id)) is not None and o["status"] == "ACCEPTED",
            what="the good record after the bad one folded",
        )
        letters = [
            m.value async for m in replay(kafka_bootstrap, "oms.events.v1.dlq", namespace=topic_namespace, timeout_s=10)
        ]
        assert [(d.source_topic, d.reason_code, d.key) for d in letters] == [
            (f"{topic_namespace}oms.events.v1", "decode_error", b"co-bad")
        ]
        assert feed.health() is None


async def test_the_caps_evict_the_oldest_orders_and_what_is_joined_to_them(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    async with (
        running_feed(kafka_bootstrap, topic_namespace, Caps(orders=2)) as feed,
        publisher_of(kafka_bootstrap, topic_namespace) as publisher,
    ):
        paths = [OrderPath("AMD", ts_ns=1_800_000_000_000_000_000 + i * 1_000_000_000) for i in range(3)]
        for path in paths:
            key = path.client_order_id
            event = path.event(oms_pb2.ORDER_EVENT_TYPE_INITIALIZED, oms_pb2.ORDER_STATUS_INITIALIZED, 1)
            await publisher.publish("oms.events.v1", event, key)
        model = feed.model
        await wait_until(lambda: model.orders.evicted == 1, what="the third order evicts the first")
        assert [o["client_order_id"] for o in model.orders.values()] == [p.client_order_id for p in paths[1:]]
        assert paths[0].client_order_id not in model.order_events
        assert model.lineage(paths[0].client_order_id) is None


async def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_keep_receiving(
    kafka_bootstrap: str, topic_namespace: str
) -> None:
    async with (
        running_feed(kafka_bootstrap, topic_namespace) as feed,
        publisher_of(kafka_bootstrap, topic_namespace) as publisher,
    ):
        slow = feed.subscribe(["alerts"])  # never reads until the end
        fast = feed.subscribe(["alerts"])
        received: list[str] = []

        async def read_fast() -> None:
            async for _, data in fast:
                received.append(str(data["subject"]))
                if len(received) == 80:
                    return

        reader = asyncio.create_task(read_fast())
        for i in range(80):  # the feed's queues hold 50
            await publisher.publish("analytics.alerts.v1", alert("fill_ratio_low", f"S{i}"), key=f"fill_ratio_low|S{i}")
        await asyncio.wait_for(reader, 30)
        assert received == [f"S{i}" for i in range(80)]
        assert slow.dropped
        updates = [update async for update in slow]
        assert [channel for channel, _ in updates] == [DROPPED]
        assert "fell behind" in updates[0][1]["reason"]
        fast.close()
        assert feed.fanout.subscribers == 0
