"""The risk service over gRPC with the real broker and Redis: decisions on the bus, audited limit changes, and a halt
that survives a restart."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from risk_service.app import STATE_KEY, RiskApp
from risk_service.config import RiskSettings
from trading.common.v1 import common_pb2
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.decimals import to_proto
from trading_platform.messaging import replay
from trading_platform.rpc import RpcServer, Servicer, insecure_channel
from trading_platform.settings import load_settings

pytestmark = pytest.mark.integration


async def serve(settings: RiskSettings) -> tuple[RiskApp, RpcServer]:
    app = RiskApp(settings)
    await app.start()
    app.engine.on_price("AAPL", Decimal("100"))
    server = RpcServer([Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, app, "trading.risk.v1.RiskService")])
    await server.start()
    return app, server


async def topic(bootstrap: str, namespace: str, name: str) -> list[Any]:
    return [m.value async for m in replay(bootstrap, name, namespace=namespace)]


async def test_decisions_limits_and_a_halt_that_survives_restart(
    kafka_bootstrap: str, redis_url: str, topic_namespace: str
) -> None:
    settings = load_settings(
        RiskSettings,
        service_name="risk",
        kafka={"bootstrap_servers": kafka_bootstrap, "namespace": topic_namespace},
        redis={"url": redis_url},
    )
    app, server = await serve(settings)
    await app.redis.delete(STATE_KEY)
    try:
        async with insecure_channel(server.address) as channel:
            stub = risk_pb2_grpc.RiskServiceStub(channel)
            check = risk_pb2.CheckOrderRequest(
                client_order_id="co-1",
                symbol="AAPL",
                side=common_pb2.ORDER_SIDE_BUY,
                quantity=to_proto("10"),
                reference_price=to_proto("100"),
            )
            decision = await stub.CheckOrder(check)
            assert decision.approved
            limits = await stub.GetLimits(risk_pb2.GetLimitsRequest())
            limits.version = "v2"
            limits.max_order_quantity.CopyFrom(to_proto("5"))
            updated = await stub.UpdateLimits(
                risk_pb2.UpdateLimitsRequest(limits=limits, actor="risk-officer", reason="tighter")
            )
            assert updated.version == "v2" and updated.max_order_quantity.value == "5"
            check.client_order_id = "co-2"
            denied = await stub.CheckOrder(check)
            assert not denied.approved and denied.reason_code == risk_pb2.REASON_CODE_MAX_ORDER_QUANTITY
            assert denied.limits_version == "v2"
            await stub.SetTradingState(
                risk_pb2.SetTradingStateRequest(
                    state=risk_pb2.TRADING_STATE_HALTED, reason="drill", actor="risk-officer", cancel_open_orders=True
                )
            )
    finally:
        await server.stop(0)
        await app.stop()

    decisions = await topic(kafka_bootstrap, topic_namespace, "risk.decisions.v1")
    assert [(d.client_order_id, d.approved) for d in decisions] == [("co-1", True), ("co-2", False)]
    assert decisions[0].envelope.message_id == decision.envelope.message_id
    changes = await topic(kafka_bootstrap, topic_namespace, "risk.limits.v1")
    assert changes[0].previous.version == "v1" and changes[0].limits.version == "v2"
    assert changes[0].actor == "risk-officer"
    states = await topic(kafka_bootstrap, topic_namespace, "risk.state.v1")
    assert states[-1].state == risk_pb2.TRADING_STATE_HALTED and states[-1].reason == "drill"
    # The kill switch's cancels travel with the state change (execution reads it); risk writes no order command.
    assert states[-1].cancel_open_orders
    assert await topic(kafka_bootstrap, topic_namespace, "oms.commands.v1") == []

    restarted, server = await serve(settings)  # the halt is in Redis: a restarted gate is still halted
    try:
        check = risk_pb2.CheckOrderRequest(
            client_order_id="co-3",
            symbol="AAPL",
            side=common_pb2.ORDER_SIDE_BUY,
            quantity=to_proto("1"),
            reference_price=to_proto("100"),
        )
        assert restarted.engine.check(check).reason_code == risk_pb2.REASON_CODE_TRADING_HALTED
    finally:
        await restarted.redis.delete(STATE_KEY)
        await server.stop(0)
        await restarted.stop()
