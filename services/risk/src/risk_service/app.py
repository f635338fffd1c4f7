"""Risk wiring: the gRPC gate, the trading state in Redis, prices and positions from the bus, decisions out."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import grpc
import redis.asyncio as aioredis
from prometheus_client import Counter
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.clock import LiveClock
from trading_platform.decimals import from_proto
from trading_platform.envelope import new_envelope
from trading_platform.messaging import ConsumedMessage, Consumer, Publisher, ensure_topics
from trading_platform.observability import get_logger
from trading_platform.rpc import Servicer
from trading_platform.service import ServiceParts

from risk_service.config import RiskSettings
from risk_service.engine import RiskEngine

log = get_logger("risk")
DECISIONS_UNACKED = Counter("risk_decisions_unacked_total", "decisions the bus did not acknowledge")
STATE_KEY = "risk:trading_state"
PRODUCED = ["risk.decisions.v1", "risk.state.v1", "risk.limits.v1", "risk.alerts.v1"]
CONSUMED = ["marketdata.bars.v1", "oms.positions.v1"]


class RiskApp(risk_pb2_grpc.RiskServiceServicer):
    def __init__(self, settings: RiskSettings) -> None:
        self.settings = settings
        self.engine = RiskEngine(settings.risk, LiveClock())
        kafka = settings.kafka
        shadow = settings.deployment.shadow
        self.publisher = Publisher(
            kafka.connection(),
            "risk",
            namespace=kafka.namespace,
            shadow=shadow,
        )
        self.consumer = Consumer(
            kafka.connection(),
            "risk",
            CONSUMED,
            self.on_message,
            publisher=self.publisher,
            namespace=kafka.namespace,
            shadow=shadow,
            group_options=kafka.group_options(),
            auto_offset_reset="latest",
        )
        self.redis = aioredis.from_url(settings.redis.url)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        kafka = self.settings.kafka
        await ensure_topics(
            kafka.connection(),
            PRODUCED + CONSUMED,
            namespace=kafka.namespace,
            shadow=self.settings.deployment.shadow,
        )
        stored = await self.redis.hgetall(STATE_KEY)
        if stored:  # a restarted gate keeps the state it had: a halt survives a crash
            reason = stored.get(b"reason", b"")
            self.engine.set_state(int(stored[b"state"]), reason.decode() if isinstance(reason, bytes) else reason)
        await self.publisher.start()
        await self.consumer.start()
        self._task = asyncio.create_task(self.consumer.run())

    async def stop(self) -> None:
        await self.consumer.stop()
        if self._task:
            await self._task
        await self.consumer.close()
        await self.publisher.stop()
        await self.redis.aclose()

    async def on_message(self, message: ConsumedMessage) -> None:
        value: Any = message.value
        if message.topic == "marketdata.bars.v1":
            self.engine.on_price(value.symbol, Decimal(repr(value.close)))
        else:
            position = value.position
            self.engine.on_position(
                position.symbol,
                from_proto(position.quantity) or Decimal(0),
                from_proto(position.average_entry_price) or Decimal(0),
                from_proto(position.realized_pnl) or Decimal(0),
            )

    # -- gRPC --------------------------------------------------------------------------------------------------
    async def CheckOrder(self, request: risk_pb2.CheckOrderRequest, context: Any) -> risk_pb2.RiskDecision:
        verdict = self.engine.check(request)
        decision = risk_pb2.RiskDecision(
            envelope=new_envelope("risk", cause=request.envelope if request.envelope.message_id else None),
            client_order_id=request.client_order_id,
            approved=verdict.approved,
            reason_code=verdict.reason_code,
            reason=verdict.reason,
            trading_state=self.engine.trading_state,
            limits_version=self.engine.limits.limits_version,
            symbol=request.symbol,
            side=request.side,
            quantity=request.quantity,
        )
        if request.dry_run:  # a shadow colour's question: answered, recorded nowhere
            return decision
        # The decision is handed to the bus before the caller hears it, and its ack is watched rather than awaited:
        # invariant 1 is held where the order is sent, since execution submits only what an approval it has read
        # on risk.decisions.v1 names. A decision the bus never takes (a crash in the ~2 ms before its ack) means
        # that order is refused at execution, never sent unapproved.
        delivery = await self.publisher.send(
            "risk.decisions.v1", decision, key=request.client_order_id, span_until_ack=True
        )
        delivery.add_done_callback(lambda ack: self._decision_acked(ack, decision))
        for previous, state, reason in self.engine.state_changes:
            await self._publish_state(previous, state, reason, "risk")
        self.engine.state_changes.clear()
        return decision

    @staticmethod
    def _decision_acked(ack: asyncio.Future[Any], decision: risk_pb2.RiskDecision) -> None:
        if not ack.cancelled() and ack.exception() is not None:
            DECISIONS_UNACKED.inc()
            log.error(
                "risk decision not acknowledged by the bus: execution will refuse its order",
                client_order_id=decision.client_order_id,
                approved=decision.approved,
                error=str(ack.exception()),
            )

    async def GetTradingState(self, request: Any, context: Any) -> risk_pb2.TradingStateResponse:
        return risk_pb2.TradingStateResponse(state=self.engine.trading_state, reason=self.engine.state_reason)

    async def SetTradingState(
        self,
        request: risk_pb2.SetTradingStateRequest,
        context: Any,
    ) -> risk_pb2.TradingStateResponse:
        if request.state == risk_pb2.TRADING_STATE_UNSPECIFIED:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "state must be ACTIVE, REDUCING or HALTED")
        previous, state = self.engine.set_state(request.state, request.reason or "operator")
        await self.redis.hset(STATE_KEY, mapping={"state": state, "reason": request.reason or "operator"})
        # The kill switch's cancels travel with the state change: execution, which owns the broker connection, cancels
        # every open order when it reads HALTED with cancel_open_orders (only order-management writes order commands).
        cancel = request.state == risk_pb2.TRADING_STATE_HALTED and request.cancel_open_orders
        await self._publish_state(
            previous, state, request.reason, request.actor or "operator", cancel_open_orders=cancel
        )
        log.warning(
            "trading state changed", state=risk_pb2.TradingState.Name(state), actor=request.actor, reason=request.reason
        )
        return risk_pb2.TradingStateResponse(state=state, reason=request.reason)

    async def GetLimits(self, request: Any, context: Any) -> risk_pb2.RiskLimits:
        return self.engine.limits_proto()

    async def UpdateLimits(self, request: risk_pb2.UpdateLimitsRequest, context: Any) -> risk_pb2.RiskLimits:
        previous = self.engine.limits_proto()
        try:
            self.engine.update_limits(request.limits)
        except ValueError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid limits: {error}")
        limits = self.engine.limits_proto()
        await self.publisher.publish(
            "risk.limits.v1",
            risk_pb2.LimitsChanged(
                envelope=new_envelope("risk"),
                previous=previous,
                limits=limits,
                actor=request.actor,
                reason=request.reason,
            ),
            key="_limits",
        )
        return limits

    async def _publish_state(
        self, previous: int, state: int, reason: str, actor: str, *, cancel_open_orders: bool = False
    ) -> None:
        await self.publisher.publish(
            "risk.state.v1",
            risk_pb2.TradingStateChanged(
                envelope=new_envelope("risk"),
                previous_state=previous,
                state=state,
                reason=reason,
                actor=actor,
                cancel_open_orders=cancel_open_orders,
            ),
            key="_trading_state",
        )


async def build(settings: RiskSettings) -> ServiceParts:
    app = RiskApp(settings)
    return ServiceParts(
        components=[app],
        servicers=[Servicer(risk_pb2_grpc.add_RiskServiceServicer_to_server, app, "trading.risk.v1.RiskService")],
    )
