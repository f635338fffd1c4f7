"""Order-management wiring: signals and execution reports in, risk over gRPC, order commands and events out.

Start-up order (DESIGN.md invariant 4): replay oms.events.v1 into the book, reconcile with the broker (through
execution's snapshot RPCs), and only then consume. A reconciliation mismatch blocks new orders until it clears.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import grpc
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2, execution_pb2_grpc
from trading.oms.v1 import oms_pb2, oms_pb2_grpc
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.decimals import from_proto, to_proto
from trading_platform.envelope import new_envelope
from trading_platform.ids import client_order_id as derive_client_order_id
from trading_platform.ids import new_message_id
from trading_platform.messaging import (
    ConsumedMessage,
    Consumer,
    MemoryIdempotencyStore,
    Publisher,
    ensure_topics,
    replay,
)
from trading_platform.observability import get_logger
from trading_platform.rpc import Servicer, insecure_channel
from trading_platform.service import ServiceParts

from oms_service.config import OmsSettings
from oms_service.engine import OPEN, OrderBook

log = get_logger("order-management")
S = oms_pb2
PRODUCED = ["oms.commands.v1", "oms.events.v1", "oms.positions.v1", "oms.reconciliation.v1"]
CONSUMED = ["signal.signals.v1", "execution.reports.v1"]


class BookLocks:
    """The order book is changed one symbol at a time: orders for different symbols go through risk and onto the bus
    side by side, while everything about one symbol (its signals, its orders' reports, manual orders) stays in
    sequence. Reconciliation compares the whole book with the broker, so it waits for all of them and holds off new
    ones until it is done."""

    def __init__(self) -> None:
        self._symbols: dict[str, asyncio.Lock] = {}
        self._gate = asyncio.Lock()  # held by reconciliation
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @asynccontextmanager
    async def symbol(self, symbol: str) -> AsyncIterator[None]:
        async with self._gate:  # not while reconciliation runs
            self._active += 1
            self._idle.clear()
        try:
            async with self._symbols.setdefault(symbol, asyncio.Lock()):
                yield
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    @asynccontextmanager
    async def whole_book(self) -> AsyncIterator[None]:
        async with self._gate:
            await self._idle.wait()
            yield


class OmsApp(oms_pb2_grpc.OrderServiceServicer):
    def __init__(self, settings: OmsSettings) -> None:
        self.settings = settings
        self.config = settings.oms
        kafka = settings.kafka
        self.shadow = settings.deployment.shadow
        self.book = OrderBook()
        self.idempotency = MemoryIdempotencyStore()
        self.publisher = Publisher(
            kafka.bootstrap_servers,
            "order-management",
            namespace=kafka.namespace,
            shadow=self.shadow,
            doorbell_url=settings.doorbell_url(),
        )
        self.consumer = Consumer(
            kafka.bootstrap_servers,
            "order-management",
            CONSUMED,
            self.on_message,
            publisher=self.publisher,
            idempotency=self.idempotency,
            namespace=kafka.namespace,
            shadow=self.shadow,
            group_options=kafka.group_options(),
            concurrent_keys=True,  # signals (by symbol) and reports (by order) side by side; BookLocks orders a symbol
            **settings.wakeups(),
        )
        self.risk_channel = insecure_channel(self.config.risk_address, self.config.risk_timeout_s)
        self.execution_channel = insecure_channel(self.config.execution_address, 5.0)
        self.risk = risk_pb2_grpc.RiskServiceStub(self.risk_channel)
        self.execution = execution_pb2_grpc.ExecutionServiceStub(self.execution_channel)
        self.equity = self.config.fallback_equity
        self.trading_blocked = True  # until the first reconciliation passes
        self.locks = BookLocks()
        self.tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        kafka = self.settings.kafka
        await ensure_topics(kafka.bootstrap_servers, PRODUCED + CONSUMED, namespace=kafka.namespace, shadow=self.shadow)
        await self.publisher.start()
        started = time.monotonic()
        # Both colours start from the book of record (the live log): a shadow colour then follows the live inputs and
        # writes its own decisions to shadow topics, so its book stays the one it would keep if it were live.
        async for message in replay(kafka.bootstrap_servers, "oms.events.v1", namespace=kafka.namespace):
            self.book.apply(message.value)  # type: ignore[arg-type]
        # SUBMITTED and its command are published together (one ack wait on the order path): a command on the bus
        # is what proves an order was sent, so it is read back too.
        commanded: set[str] = set()
        async for message in replay(kafka.bootstrap_servers, "oms.commands.v1", namespace=kafka.namespace):
            command: Any = message.value
            if command.WhichOneof("command") == "submit_order":
                commanded.add(command.submit_order.client_order_id)
        for message_id in self.book.handled_message_ids:
            await self.idempotency.mark(message_id)
        log.info(
            "order book rebuilt from the event log",
            events=self.book.events_applied,
            orders=len(self.book.orders),
            seconds=round(time.monotonic() - started, 3),
        )
        if not self.shadow:  # recovering live orders is the live colour's job
            await self.resume_unfinished(commanded)
        await self.reconcile()
        await self.consumer.start()
        self.tasks = [asyncio.create_task(self.consumer.run()), asyncio.create_task(self.reconcile_periodically())]

    async def stop(self) -> None:
        await self.consumer.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.consumer.close()
        await self.publisher.stop()
        await self.risk_channel.close()
        await self.execution_channel.close()

    async def resume_unfinished(self, commanded: set[str]) -> None:
        """Orders a crash left half-way. INITIALIZED with its command on the bus: it was sent, so it is SUBMITTED
        now (execution handles the command). INITIALIZED without one never left: denied. SUBMITTED ones get their
        command again: the same client order id, which execution resolves at the broker without a duplicate."""
        for order in list(self.book.orders.values()):
            if order.status == S.ORDER_STATUS_INITIALIZED and order.client_order_id in commanded:
                submitted = self.book.transition(order.client_order_id, S.ORDER_STATUS_SUBMITTED)
                await self.emit(S.ORDER_EVENT_TYPE_SUBMITTED, submitted, reason="its command was on the bus")
            elif order.status == S.ORDER_STATUS_INITIALIZED:
                denied = self.book.transition(order.client_order_id, S.ORDER_STATUS_DENIED)
                denied.reason = "abandoned at restart before it was submitted"
                await self.emit(S.ORDER_EVENT_TYPE_DENIED, denied, reason=denied.reason)
            elif order.status == S.ORDER_STATUS_SUBMITTED:
                await self.send_command(order, None)

    async def reconcile(self) -> None:
        try:
            account = await self.execution.GetAccount(execution_pb2.GetAccountRequest(), timeout=5)
            snapshot = await self.execution.GetBrokerPositions(execution_pb2.GetBrokerPositionsRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            self.trading_blocked = True
            await self.publish_reconciliation([f"broker snapshot unavailable: {error.code().name}"])
            return
        self.equity = from_proto(account.equity) or self.equity
        broker = {p.symbol: from_proto(p.quantity) or Decimal(0) for p in snapshot.positions}
        mismatches = self.book.reconcile(broker, self.config.reconcile_tolerance)
        in_flight = any(o.status in OPEN for o in self.book.orders.values())
        if mismatches and in_flight:
            return  # fills on their way explain it; look again next time rather than block on a race
        # The shadow colour's book follows its own decisions, which never reach the broker, so it cannot match the
        # broker: it reports the difference and keeps deciding (blocking would leave nothing to compare at a
        # promotion). Promoted, it restarts from the book of record and reconciles as live, failing closed.
        self.trading_blocked = bool(mismatches) and not self.shadow
        await self.publish_reconciliation(mismatches)

    async def publish_reconciliation(self, mismatches: list[str]) -> None:
        if mismatches and self.trading_blocked:
            log.error("reconciliation failed: new orders blocked", mismatches=mismatches)
        elif mismatches:
            log.info("shadow book differs from the broker (expected: its orders are never sent)", mismatches=mismatches)
        await self.publisher.publish(
            "oms.reconciliation.v1",
            oms_pb2.ReconciliationCompleted(
                envelope=new_envelope("order-management"),
                matched=not mismatches,
                mismatches=mismatches,
                trading_blocked=self.trading_blocked,
            ),
            key="_account",
        )

    async def reconcile_periodically(self) -> None:
        while True:
            # Blocked means no new orders: look again soon rather than wait a whole interval.
            await asyncio.sleep(1.0 if self.trading_blocked else self.config.reconcile_interval_s)
            async with self.locks.whole_book():
                await self.reconcile()

    # -- the bus -----------------------------------------------------------------------------------------------
    async def on_message(self, message: ConsumedMessage) -> None:
        value: Any = message.value
        if message.topic == "signal.signals.v1":
            async with self.locks.symbol(value.symbol):
                # The signal's reference price (the bar close it saw) marks the position: no need to read every bar.
                self.book.mark(value.symbol, from_proto(value.reference_price) or Decimal(0))
                await self.on_signal(value)
        else:
            order = self.book.orders.get(value.client_order_id)
            async with self.locks.symbol(order.symbol if order is not None else value.symbol):
                await self.on_report(value)

    async def on_signal(self, signal: Any) -> None:
        price = from_proto(signal.reference_price) or Decimal(0)
        delta = self.book.order_delta(
            signal.symbol,
            signal.target_weight,
            self.equity,
            price,
            self.config.lot_size,
            self.config.min_order_quantity,
            self.config.min_order_notional,
        )
        if delta == 0:
            return
        if self.trading_blocked:
            log.warning("signal not traded: reconciliation has blocked new orders", symbol=signal.symbol)
            return
        cid = derive_client_order_id(signal.strategy_id or "default", signal.envelope.message_id, signal.symbol)
        if cid in self.book.orders:
            return
        lineage = oms_pb2.OrderLineage(
            signal_id=signal.envelope.message_id,
            strategy_id=signal.strategy_id,
            model_version=signal.model_version,
            feature_hash=signal.feature_hash,
        )
        await self.place(cid, signal.symbol, delta, price, lineage, cause=signal)

    async def place(
        self,
        cid: str,
        symbol: str,
        delta: Decimal,
        price: Decimal,
        lineage: oms_pb2.OrderLineage,
        cause: Any,
        order_type: int = common_pb2.ORDER_TYPE_MARKET,
        limit_price: Decimal | None = None,
    ) -> tuple[oms_pb2.Order, risk_pb2.RiskDecision | None]:
        side = common_pb2.ORDER_SIDE_BUY if delta > 0 else common_pb2.ORDER_SIDE_SELL
        now = time.time_ns()
        order = oms_pb2.Order(
            client_order_id=cid,
            symbol=symbol,
            side=side,
            quantity=to_proto(abs(delta)),
            order_type=order_type,
            time_in_force=common_pb2.TIME_IN_FORCE_DAY,
            limit_price=to_proto(limit_price),
            status=S.ORDER_STATUS_INITIALIZED,
            filled_quantity=to_proto(0),
            lineage=lineage,
            created_at=now,
            updated_at=now,
        )
        # INITIALIZED goes out while risk decides (its ack is awaited before anything depends on it): one ack wait
        # less on the order path. A crash in between leaves at most an unsent order that risk approved.
        initialized = asyncio.create_task(self.emit(S.ORDER_EVENT_TYPE_INITIALIZED, order, cause=cause))
        request = risk_pb2.CheckOrderRequest(
            envelope=new_envelope("order-management", cause=cause),
            client_order_id=cid,
            symbol=symbol,
            side=side,
            quantity=order.quantity,
            order_type=order_type,
            limit_price=order.limit_price,
            reference_price=to_proto(price),
            strategy_id=lineage.strategy_id,
            dry_run=self.shadow,  # the shadow colour must not count towards live duplicate and throttle checks
        )
        try:
            decision = await self.risk.CheckOrder(request)
        except grpc.aio.AioRpcError as error:  # fail closed: no answer is a no
            await initialized
            denied = self.book.transition(cid, S.ORDER_STATUS_DENIED)
            denied.reason = f"risk unavailable: {error.code().name}"
            await self.emit(S.ORDER_EVENT_TYPE_DENIED, denied, cause=cause, reason=denied.reason)
            return denied, None
        await initialized
        if not decision.approved:
            denied = self.book.transition(cid, S.ORDER_STATUS_DENIED)
            denied.reason = f"{risk_pb2.ReasonCode.Name(decision.reason_code)}: {decision.reason}"
            denied.lineage.risk_decision_id = decision.envelope.message_id
            await self.emit(S.ORDER_EVENT_TYPE_DENIED, denied, cause=cause, reason=denied.reason)
            return denied, decision
        submitted = self.book.transition(cid, S.ORDER_STATUS_SUBMITTED)
        submitted.lineage.risk_decision_id = decision.envelope.message_id
        # The event and the command together: at restart a command on the bus counts as SUBMITTED (resume_unfinished)
        await asyncio.gather(
            self.emit(S.ORDER_EVENT_TYPE_SUBMITTED, submitted, cause=cause),
            self.send_command(submitted, cause, arrival_price=price),
        )
        return submitted, decision

    async def send_command(self, order: oms_pb2.Order, cause: Any, arrival_price: Decimal | None = None) -> None:
        command = oms_pb2.OrderCommand(
            envelope=new_envelope("order-management", cause=cause),
            submit_order=oms_pb2.SubmitOrder(
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                quantity=order.quantity,
                order_type=order.order_type,
                time_in_force=order.time_in_force,
                limit_price=order.limit_price,
                stop_price=order.stop_price,
                lineage=order.lineage,
                arrival_price=to_proto(arrival_price),
            ),
        )
        await self.publisher.publish("oms.commands.v1", command, key=order.client_order_id)

    async def on_report(self, report: Any) -> None:
        event = self.book.event_for_report(report)
        if event is None:
            return
        if event.event_type == S.ORDER_EVENT_TYPE_TRANSITION_REJECTED:
            log.warning(
                "execution report rejected by the state machine",
                client_order_id=report.client_order_id,
                reason=event.reason,
            )
        event.envelope.CopyFrom(new_envelope("order-management", cause=report))
        await self.publisher.publish("oms.events.v1", event, key=event.client_order_id)
        self.book.apply(event)
        if event.fill_id:
            position = self.book.positions[event.order.symbol]
            await self.publisher.publish(
                "oms.positions.v1",
                oms_pb2.PositionChanged(
                    envelope=new_envelope("order-management", cause=report),
                    position=position.to_proto(),
                    client_order_id=event.client_order_id,
                    fill_id=event.fill_id,
                ),
                key=position.symbol,
            )

    async def emit(self, event_type: int, order: oms_pb2.Order, cause: Any = None, reason: str = "") -> None:
        order.updated_at = time.time_ns()
        event = oms_pb2.OrderEvent(
            envelope=new_envelope("order-management", cause=cause),
            event_type=event_type,
            client_order_id=order.client_order_id,
            order=order,
            reason=reason,
        )
        await self.publisher.publish("oms.events.v1", event, key=order.client_order_id)  # durable first
        self.book.apply(event)

    # -- gRPC --------------------------------------------------------------------------------------------------
    async def SubmitOrder(self, request: oms_pb2.SubmitOrderRequest, context: Any) -> oms_pb2.SubmitOrderResponse:
        quantity = from_proto(request.quantity) or Decimal(0)
        if not request.symbol or quantity <= 0 or request.side == common_pb2.ORDER_SIDE_UNSPECIFIED:
            return oms_pb2.SubmitOrderResponse(
                accepted=False, reason_code="INVALID_ORDER", reason="symbol, side and a positive quantity are required"
            )
        decision_id = request.decision_id or new_message_id()
        strategy = request.strategy_id or "manual"
        cid = derive_client_order_id(strategy, decision_id, request.symbol)
        async with self.locks.symbol(request.symbol):
            if cid in self.book.orders:
                return oms_pb2.SubmitOrderResponse(
                    order=self.book.orders[cid],
                    accepted=False,
                    reason_code="DUPLICATE",
                    reason="this decision was placed before",
                )
            if self.trading_blocked:
                return oms_pb2.SubmitOrderResponse(
                    accepted=False,
                    reason_code="RECONCILIATION_BLOCKED",
                    reason="new orders are blocked until reconciliation passes",
                )
            price = (
                from_proto(request.limit_price, None)
                or (self.book.positions.get(request.symbol, None) and self.book.positions[request.symbol].market_price)
                or Decimal(0)
            )
            signed = quantity if request.side == common_pb2.ORDER_SIDE_BUY else -quantity
            lineage = oms_pb2.OrderLineage(signal_id=decision_id, strategy_id=strategy)
            order, decision = await self.place(
                cid,
                request.symbol,
                signed,
                price,
                lineage,
                cause=None,
                order_type=request.order_type or common_pb2.ORDER_TYPE_MARKET,
                limit_price=from_proto(request.limit_price, None),
            )
        approved = order.status == S.ORDER_STATUS_SUBMITTED
        return oms_pb2.SubmitOrderResponse(
            order=order,
            accepted=approved,
            reason=order.reason,
            reason_code="APPROVED"
            if approved
            else (risk_pb2.ReasonCode.Name(decision.reason_code) if decision else "RISK_UNAVAILABLE"),
        )

    async def CancelOrder(self, request: oms_pb2.CancelOrderRequest, context: Any) -> oms_pb2.CancelOrderResponse:
        known = self.book.orders.get(request.client_order_id)
        async with self.locks.symbol(known.symbol if known is not None else request.client_order_id):
            order = self.book.orders.get(request.client_order_id)
            if order is None or order.status not in OPEN:
                return oms_pb2.CancelOrderResponse(accepted=False, reason="no open order with that id")
            command = oms_pb2.OrderCommand(
                envelope=new_envelope("order-management"),
                cancel_order=oms_pb2.CancelOrder(
                    client_order_id=request.client_order_id, reason=request.reason or "operator"
                ),
            )
            await self.publisher.publish("oms.commands.v1", command, key=request.client_order_id)
        return oms_pb2.CancelOrderResponse(accepted=True, reason="cancel sent to the broker")

    async def GetOrder(self, request: oms_pb2.GetOrderRequest, context: Any) -> oms_pb2.Order:
        order = self.book.orders.get(request.client_order_id)
        if order is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no order {request.client_order_id}")
        return order

    async def ListOrders(self, request: oms_pb2.ListOrdersRequest, context: Any) -> oms_pb2.ListOrdersResponse:
        orders = [
            o
            for o in self.book.orders.values()
            if (not request.symbol or o.symbol == request.symbol)
            and (not request.statuses or o.status in request.statuses)
        ]
        orders.sort(key=lambda o: o.created_at, reverse=True)
        return oms_pb2.ListOrdersResponse(orders=orders[: request.limit or 1000])

    async def ListPositions(self, request: Any, context: Any) -> oms_pb2.ListPositionsResponse:
        positions = [p for p in self.book.positions.values() if p.quantity != 0 or p.realized_pnl != 0]
        return oms_pb2.ListPositionsResponse(
            positions=[p.to_proto() for p in positions],
            realized_pnl=to_proto(sum((p.realized_pnl for p in positions), Decimal(0))),
            unrealized_pnl=to_proto(sum((p.unrealized_pnl for p in positions), Decimal(0))),
        )


async def build(settings: OmsSettings) -> ServiceParts:
    app = OmsApp(settings)
    return ServiceParts(
        components=[app],
        servicers=[Servicer(oms_pb2_grpc.add_OrderServiceServicer_to_server, app, "trading.oms.v1.OrderService")],
        live_lease=True,  # the old live colour leaves the book and the consumer group before this one joins
    )
