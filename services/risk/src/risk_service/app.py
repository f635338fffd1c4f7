"""Risk wiring: the gRPC gate, its book rebuilt from the bus at start and kept from it, decisions and state out.

Every instance reads the whole book itself: its consumer group is its own (`risk-book-<host>-<start ns>`), so no
partition of its inputs is split with another pod. At start it joins (positions settled at the end), then replays
the durable state (the latest limits, trading state and start-of-day equity from risk's compacted topics, the
pending four-eyes changes, every position of record, and the decisions and order events of `book_horizon_s`), and
only then serves approvals (`CheckOrder` is denied with REASON_CODE_STALE_RISK_STATE before). Records the replay
applied are skipped when the live consumer delivers them again; risk's own records coming back are skipped too.
"""

from __future__ import annotations

import asyncio
import socket
import time
from decimal import Decimal
from typing import Any

import grpc
from google.protobuf.message import Message
from prometheus_client import Counter
from trading.execution.v1 import execution_pb2, execution_pb2_grpc
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.clock import LiveClock
from trading_platform.decimals import from_proto, to_proto
from trading_platform.envelope import new_envelope
from trading_platform.identity import RISK_OFFICER, Identity, current_identity
from trading_platform.messaging import ConsumedMessage, Consumer, PermanentError, Publisher, ensure_topics, replay
from trading_platform.observability import get_logger
from trading_platform.rpc import Servicer, channel
from trading_platform.service import ServiceParts

from risk_service.config import RiskSettings
from risk_service.engine import NS, DayEquity, RiskEngine
from risk_service.four_eyes import FourEyes, PendingChange, Refusal, apply_raise, lifts, split_limits

log = get_logger("risk")
DECISIONS_UNACKED = Counter("risk_decisions_unacked_total", "decisions the bus did not acknowledge")
R = risk_pb2
PRODUCED = [
    "risk.decisions.v1",
    "risk.state.v1",
    "risk.limits.v1",
    "risk.alerts.v1",
    "risk.changes.v1",
    "risk.equity.v1",
]
# The book: read whole by every instance (its own group), from where its start-up replay ended.
BOOK = [
    "marketdata.bars.v1",
    "oms.positions.v1",
    "oms.events.v1",
    "risk.decisions.v1",
    "risk.state.v1",
    "risk.limits.v1",
    "risk.changes.v1",
]
HOUSEKEEPING_S = 1.0
REFUSAL_CODES = {
    "not_found": grpc.StatusCode.NOT_FOUND,
    "self_approval": grpc.StatusCode.PERMISSION_DENIED,
    "hash_mismatch": grpc.StatusCode.FAILED_PRECONDITION,
    "expired": grpc.StatusCode.DEADLINE_EXCEEDED,
    "state_moved": grpc.StatusCode.FAILED_PRECONDITION,
}


def book_group() -> str:
    """A consumer group of this process alone: every instance is handed every partition of the book."""
    return f"risk-book-{socket.gethostname()}-{time.time_ns()}"


class RiskApp(risk_pb2_grpc.RiskServiceServicer):
    def __init__(self, settings: RiskSettings) -> None:
        self.settings = settings
        self.config = settings.risk
        self.clock = LiveClock()
        self.engine = RiskEngine(settings.risk, self.clock)
        self.four_eyes = FourEyes(self.clock, settings.risk.four_eyes_window_s)
        kafka = settings.kafka
        self.shadow = settings.deployment.shadow
        self.publisher = Publisher(kafka.connection(), "risk", namespace=kafka.namespace, shadow=self.shadow)
        self.group = book_group()
        self.consumer = Consumer(
            kafka.connection(),
            self.group,
            BOOK,
            self.on_message,
            publisher=self.publisher,
            namespace=kafka.namespace,
            group_options=kafka.group_options(),
            auto_offset_reset="latest",  # what came before is replayed at start
        )
        self.replayed: dict[tuple[str, int], int] = {}  # (topic, partition) -> first offset the replay did not apply
        self.own: set[str] = set()  # message ids risk published on topics it reads back
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        kafka = self.settings.kafka
        topics = {*PRODUCED, *BOOK, *(f"{name}.dlq" for name in BOOK)}  # risk dead-letters what it cannot take
        await ensure_topics(kafka.connection(), sorted(topics), namespace=kafka.namespace, shadow=self.shadow)
        await self.publisher.start()
        await self.consumer.start()  # joined, positions at the end: the replay below covers everything before
        await self.rebuild()
        self.engine.mark_ready()
        log.info(
            "risk book rebuilt",
            positions=len(self.engine.positions),
            working_orders=len(self.engine.working),
            trading_state=R.TradingState.Name(self.engine.trading_state),
            limits_version=self.engine.limits.limits_version,
            pending_changes=len(self.four_eyes.pending),
            group=self.group,
        )
        self._tasks = [asyncio.create_task(self.consumer.run()), asyncio.create_task(self._housekeeping())]

    async def rebuild(self) -> None:
        now_ms = time.time_ns() // 1_000_000
        horizon_ms = now_ms - int(self.config.book_horizon_s * 1000)
        await self._replay("risk.limits.v1", last=1)
        await self._replay("risk.state.v1", last=1)
        await self._replay("risk.equity.v1", last=1)
        await self._replay("risk.changes.v1", since_ms=now_ms - int(self.config.four_eyes_window_s * 1000) - 1000)
        await self._replay("oms.positions.v1")
        await self._replay("risk.decisions.v1", since_ms=horizon_ms)
        await self._replay("oms.events.v1", since_ms=horizon_ms)

    async def _replay(self, topic: str, **window: Any) -> None:
        kafka = self.settings.kafka
        async for message in replay(kafka.connection(), topic, namespace=kafka.namespace, **window):
            self._apply(message)
            key = (message.topic, message.partition)
            self.replayed[key] = max(self.replayed.get(key, 0), message.offset + 1)

    async def stop(self) -> None:
        await self.consumer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.consumer.close()
        await self.publisher.stop()

    # -- the book from the bus ---------------------------------------------------------------------------------
    async def on_message(self, message: ConsumedMessage) -> None:
        if message.offset < self.replayed.get((message.topic, message.partition), 0):
            return  # the start-up replay applied it
        message_id = message.envelope.message_id
        if message_id in self.own:
            self.own.discard(message_id)  # risk's own record coming back: already applied
            return
        if message.topic == "marketdata.bars.v1":
            # The message's age is since it was made (ts_init): a bar's ts_event is market time, which a replay of
            # history (the paper exchange) sets years back.
            age_s = (self.clock.now_ns() - message.envelope.ts_init) / NS
            if age_s > self.engine.limits.max_market_data_age_s:
                raise PermanentError(
                    f"bar of {message.value.symbol} (envelope.ts_init) is {age_s:.0f} s old, older than "  # type: ignore[attr-defined]
                    f"max_market_data_age_s {self.engine.limits.max_market_data_age_s:g}",
                    "stale_message",
                )
        self._apply(message)

    def _apply(self, message: ConsumedMessage) -> None:
        value: Any = message.value
        topic = message.topic
        if topic == "marketdata.bars.v1":
            self.engine.on_price(value.symbol, Decimal(repr(value.close)))
        elif topic == "oms.positions.v1":
            position = value.position
            self.engine.on_position(
                position.symbol,
                from_proto(position.quantity) or Decimal(0),
                from_proto(position.average_entry_price) or Decimal(0),
                from_proto(position.realized_pnl) or Decimal(0),
            )
        elif topic == "oms.events.v1":
            order = value.order
            self.engine.on_order_event(
                value.client_order_id,
                order.status,
                from_proto(order.quantity) or Decimal(0),
                from_proto(order.filled_quantity) or Decimal(0),
            )
        elif topic == "risk.decisions.v1":
            self.engine.on_decision(value)
        elif topic == "risk.state.v1":
            self.engine.set_state(value.state, value.reason)
        elif topic == "risk.limits.v1":
            self.engine.update_limits(value.limits, replace_symbols=True)
        elif topic == "risk.changes.v1":
            self.four_eyes.restore(value)
        elif topic == "risk.equity.v1":
            if value.trading_day == self.engine.trading_day(self.clock.now_ns()):
                equity, pnl = from_proto(value.equity), from_proto(value.book_pnl) or Decimal(0)
                if equity is not None:
                    self.engine.restore_day(DayEquity(value.trading_day, equity, pnl))

    async def _publish(self, topic: str, message: Message, key: str) -> None:
        self.own.add(message.envelope.message_id)  # type: ignore[attr-defined]
        await self.publisher.publish(topic, message, key=key)

    # -- the trading day's equity and expiries -----------------------------------------------------------------
    def book_alive(self) -> bool:
        """Whether the book is kept: rebuilt, and its consumer loop still running."""
        return self.engine.ready and bool(self._tasks) and not self._tasks[0].done()

    async def _book_health(self) -> bool:
        return self.book_alive()

    async def _housekeeping(self) -> None:
        while True:
            wait = HOUSEKEEPING_S
            if self.engine.ready and self._tasks[0].done():  # the book is no longer kept: fail closed
                self.engine.ready = False
                log.error("the book consumer stopped: every check is denied until a restart rebuilds the book")
            day = self.engine.today_without_equity()
            if day is not None:
                try:
                    await self.read_day_equity(day)
                except Exception as error:  # fail closed: checks stay denied until the broker account answers
                    log.error("start-of-day equity unknown: every check is denied", day=day, error=str(error))
                    wait = self.config.account_retry_s
            for expired in self.four_eyes.expire_due():
                await self._record_change(expired, R.CHANGE_EVENT_TYPE_EXPIRED, "risk", "not approved in time")
            await asyncio.sleep(wait)

    async def read_day_equity(self, day: str) -> DayEquity:
        """The broker account's equity (execution's GetAccount) as the start of `day`, recorded on risk.equity.v1."""
        async with channel(self.config.execution_address, self.config.account_timeout_s) as account_channel:
            account = await execution_pb2_grpc.ExecutionServiceStub(account_channel).GetAccount(
                execution_pb2.GetAccountRequest()
            )
        equity = from_proto(account.equity, None)
        if equity is None or equity <= 0:
            raise ValueError(f"the broker account {account.account_id!r} reports no positive equity ({equity})")
        started = self.engine.start_day(day, equity)
        await self._publish(
            "risk.equity.v1",
            R.StartOfDayEquityRecorded(
                envelope=new_envelope("risk"),
                trading_day=day,
                equity=to_proto(equity),
                book_pnl=to_proto(started.book_pnl),
                account_id=account.account_id,
            ),
            key="_equity",
        )
        log.info("trading day started", day=day, equity=str(equity), account=account.account_id)
        return started

    # -- gRPC: the gate ----------------------------------------------------------------------------------------
    async def CheckOrder(self, request: risk_pb2.CheckOrderRequest, context: Any) -> risk_pb2.RiskDecision:
        verdict = self.engine.check(request)
        decision = R.RiskDecision(
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
        if not self.engine.ready:  # still starting (its publisher may not be up): denied, nothing to record
            return decision
        # The decision is handed to the bus before the caller hears it, and its ack is watched rather than awaited:
        # invariant 1 is held where the order is sent, since execution submits only what an approval it has read
        # on risk.decisions.v1 names. A decision the bus never takes (a crash in the ~2 ms before its ack) means
        # that order is refused at execution, never sent unapproved.
        self.own.add(decision.envelope.message_id)
        delivery = await self.publisher.send(
            "risk.decisions.v1", decision, key=request.client_order_id, span_until_ack=True
        )
        delivery.add_done_callback(lambda ack: self._decision_acked(ack, decision))
        changes, self.engine.state_changes = self.engine.state_changes, []
        for previous, state, reason in changes:  # a loss halt is on the compacted topic before the caller hears
            await self._publish_state(previous, state, reason, "risk")
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
        return R.TradingStateResponse(state=self.engine.trading_state, reason=self.engine.state_reason)

    async def GetLimits(self, request: Any, context: Any) -> risk_pb2.RiskLimits:
        return self.engine.limits_proto()

    # -- gRPC: changes, four eyes ------------------------------------------------------------------------------
    @staticmethod
    async def _officer(context: Any) -> Identity:
        """The verified caller, who must be a risk officer; anything else is refused and changes nothing."""
        identity = current_identity()
        if identity is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no verified identity: a risk officer is needed")
        assert identity is not None
        if not identity.has_role(RISK_OFFICER):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"{identity.actor} is not a {RISK_OFFICER}: nothing changed"
            )
        return identity

    async def SetTradingState(
        self, request: risk_pb2.SetTradingStateRequest, context: Any
    ) -> risk_pb2.TradingStateResponse:
        officer = await self._officer(context)
        if request.state not in (R.TRADING_STATE_ACTIVE, R.TRADING_STATE_REDUCING, R.TRADING_STATE_HALTED):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "state must be ACTIVE, REDUCING or HALTED")
        reason = request.reason or "operator"
        current = self.engine.trading_state
        if lifts(current, request.state):
            change = R.ProposedChange(trading_state=R.TradingStateChange(from_state=current, state=request.state))
            pending = await self._request_change(change, officer, reason)
            return R.TradingStateResponse(
                state=current, reason=self.engine.state_reason, outcome=self._outcome(pending)
            )
        state = await self._apply_state(request.state, reason, officer.actor, request.cancel_open_orders)
        return R.TradingStateResponse(
            state=state, reason=reason, changed_at=self.clock.now_ns(), outcome=R.ChangeOutcome(applied=True)
        )

    async def _apply_state(self, state: int, reason: str, actor: str, cancel_open_orders: bool) -> int:
        previous, state = self.engine.set_state(state, reason)
        # The kill switch's cancels travel with the state change: execution, which owns the broker connection, cancels
        # every open order when it reads HALTED with cancel_open_orders (only order-management writes order commands).
        cancel = state == R.TRADING_STATE_HALTED and cancel_open_orders
        await self._publish_state(previous, state, reason, actor, cancel_open_orders=cancel)
        log.warning("trading state changed", state=R.TradingState.Name(state), actor=actor, reason=reason)
        return state

    async def UpdateLimits(self, request: risk_pb2.UpdateLimitsRequest, context: Any) -> risk_pb2.UpdateLimitsResponse:
        officer = await self._officer(context)
        try:
            proposed = self.engine.proposed_limits(request.limits, request.replace_restricted_symbols)
        except ValueError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid limits: {error}")
        now, raise_ = split_limits(self.engine.limits, proposed)
        if now != self.engine.limits:
            await self._apply_limits(now, officer.actor, request.reason)
        if raise_ is None:
            return R.UpdateLimitsResponse(limits=self.engine.limits_proto(), outcome=R.ChangeOutcome(applied=True))
        pending = await self._request_change(R.ProposedChange(limits=raise_), officer, request.reason)
        return R.UpdateLimitsResponse(limits=self.engine.limits_proto(), outcome=self._outcome(pending))

    async def _apply_limits(self, limits: Any, actor: str, reason: str) -> None:
        previous = self.engine.limits_proto()
        self.engine.limits = limits
        await self._publish(
            "risk.limits.v1",
            R.LimitsChanged(
                envelope=new_envelope("risk"),
                previous=previous,
                limits=self.engine.limits_proto(),
                actor=actor,
                reason=reason,
            ),
            key="_limits",
        )

    async def ApproveChange(
        self, request: risk_pb2.ApproveChangeRequest, context: Any
    ) -> risk_pb2.ApproveChangeResponse:
        officer = await self._officer(context)
        if not request.change_id or not request.content_hash:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "change_id and content_hash are required")
        try:
            pending = self.four_eyes.approve(request.change_id, request.content_hash, officer.actor)
            change = pending.change
            if change.HasField("trading_state") and change.trading_state.from_state != self.engine.trading_state:
                self.four_eyes.pending[pending.change_id] = pending  # not used up: it may be approved later
                raise Refusal(
                    "state_moved",
                    f"the trading state is {R.TradingState.Name(self.engine.trading_state)} now, not "
                    f"{R.TradingState.Name(change.trading_state.from_state)} as when change {pending.change_id} "
                    "was requested",
                    pending,
                )
        except Refusal as refusal:
            await self._refused(request, refusal, officer)
            await context.abort(REFUSAL_CODES[refusal.kind], str(refusal))
            raise  # abort raises; this is for the type checker
        reason = f"approved by {officer.actor}: {request.reason or pending.reason}"
        await self._record_change(pending, R.CHANGE_EVENT_TYPE_APPROVED, officer.actor, request.reason)
        if change.HasField("trading_state"):
            state = await self._apply_state(
                change.trading_state.state, f"{pending.reason} ({reason})", officer.actor, False
            )
        else:
            await self._apply_limits(apply_raise(self.engine.limits, change.limits), officer.actor, reason)
            state = self.engine.trading_state
        return R.ApproveChangeResponse(
            change_id=pending.change_id, change=change, limits=self.engine.limits_proto(), state=state
        )

    async def _refused(self, request: risk_pb2.ApproveChangeRequest, refusal: Refusal, officer: Identity) -> None:
        target = refusal.pending or PendingChange(
            request.change_id, R.ProposedChange(), request.content_hash, "", "", 0, 0
        )
        await self._record_change(target, R.CHANGE_EVENT_TYPE_REFUSED, officer.actor, str(refusal))
        if refusal.kind == "expired":
            await self._record_change(target, R.CHANGE_EVENT_TYPE_EXPIRED, "risk", "not approved in time")
        log.warning("change approval refused", change_id=request.change_id, actor=officer.actor, why=refusal.kind)

    async def ListPendingChanges(self, request: Any, context: Any) -> risk_pb2.ListPendingChangesResponse:
        return R.ListPendingChangesResponse(
            changes=[p.record(R.CHANGE_EVENT_TYPE_REQUESTED, p.requested_by) for p in self.four_eyes.waiting()]
        )

    async def _request_change(self, change: risk_pb2.ProposedChange, officer: Identity, reason: str) -> PendingChange:
        pending = self.four_eyes.request(change, officer.actor, reason)
        await self._record_change(pending, R.CHANGE_EVENT_TYPE_REQUESTED, officer.actor)
        log.warning("change waits for a second risk officer", change_id=pending.change_id, actor=officer.actor)
        return pending

    async def _record_change(
        self, pending: PendingChange, event_type: int, actor: str, reason: str | None = None
    ) -> None:
        event = pending.record(event_type, actor, reason)
        event.envelope.CopyFrom(new_envelope("risk"))
        await self._publish("risk.changes.v1", event, key=pending.change_id)

    @staticmethod
    def _outcome(pending: PendingChange) -> risk_pb2.ChangeOutcome:
        return R.ChangeOutcome(
            applied=False,
            change_id=pending.change_id,
            content_hash=pending.content_hash,
            pending=pending.change,
            expires_at=pending.expires_at,
        )

    async def _publish_state(
        self, previous: int, state: int, reason: str, actor: str, *, cancel_open_orders: bool = False
    ) -> None:
        await self._publish(
            "risk.state.v1",
            R.TradingStateChanged(
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
        ready_info={"group": app.group},
        health_checks={"book": app._book_health},
    )
