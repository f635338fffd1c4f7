"""order-management's restart over the real Kafka-protocol broker: SUBMITTED and its command are published together,
so an order left INITIALIZED whose command is on the bus was sent (it becomes SUBMITTED), one without a command
never left (it is denied), and the book is the fold of the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from oms_service.app import OmsApp
from oms_service.config import OmsSettings
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.decimals import to_proto
from trading_platform.devstack import free_port
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher, ensure_topics, replay
from trading_platform.settings import load_settings

pytestmark = pytest.mark.integration


def initialized(cid: str) -> oms_pb2.OrderEvent:
    order = oms_pb2.Order(
        client_order_id=cid,
        symbol="AAPL",
        side=common_pb2.ORDER_SIDE_BUY,
        quantity=to_proto("10"),
        order_type=common_pb2.ORDER_TYPE_MARKET,
        status=oms_pb2.ORDER_STATUS_INITIALIZED,
        filled_quantity=to_proto("0"),
    )
    return oms_pb2.OrderEvent(
        envelope=new_envelope("order-management"),
        event_type=oms_pb2.ORDER_EVENT_TYPE_INITIALIZED,
        client_order_id=cid,
        order=order,
    )


async def test_an_initialized_order_with_its_command_on_the_bus_resumes_as_submitted(
    kafka_bootstrap: str, topic_namespace: str, tmp_path: Path
) -> None:
    topics = ["oms.events.v1", "oms.commands.v1"]
    await ensure_topics(kafka_bootstrap, topics, namespace=topic_namespace)
    async with Publisher(kafka_bootstrap, "test", namespace=topic_namespace) as publisher:
        for cid in ("sent", "unsent"):
            await publisher.publish("oms.events.v1", initialized(cid), key=cid)
        command = oms_pb2.OrderCommand(
            envelope=new_envelope("order-management"),
            submit_order=oms_pb2.SubmitOrder(client_order_id="sent", symbol="AAPL", quantity=to_proto("10")),
        )
        await publisher.publish("oms.commands.v1", command, key="sent")
    unreachable = f"127.0.0.1:{free_port()}"
    settings = load_settings(
        OmsSettings,
        kafka={"bootstrap_servers": kafka_bootstrap, "namespace": topic_namespace},
        oms={"risk_address": unreachable, "execution_address": unreachable},
    )
    app = OmsApp(settings)
    await app.start()
    try:
        assert app.book.orders["sent"].status == oms_pb2.ORDER_STATUS_SUBMITTED
        assert app.book.orders["unsent"].status == oms_pb2.ORDER_STATUS_DENIED
        assert app.trading_blocked  # no broker snapshot: new orders stay blocked
    finally:
        await app.stop()
    events: list[Any] = [m.value async for m in replay(kafka_bootstrap, "oms.events.v1", namespace=topic_namespace)]
    resumed = [
        (e.client_order_id, oms_pb2.OrderEventType.Name(e.event_type))
        for e in events
        if e.event_type != oms_pb2.ORDER_EVENT_TYPE_INITIALIZED
    ]
    assert sorted(resumed) == [("sent", "ORDER_EVENT_TYPE_SUBMITTED"), ("unsent", "ORDER_EVENT_TYPE_DENIED")]
