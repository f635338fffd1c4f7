"""Execution wiring: the one broker trading connection (alpaca-py TradingClient + TradingStream), order commands in,
execution reports and quality out, broker snapshots over gRPC.

Invariant 1: a submit needs an approved risk decision that names its client order id, seen on risk.decisions.v1.
Invariant 2: an ambiguous submit (timeout, 5xx, dropped connection) is resolved by looking the client order id up at
the broker; a 422 duplicate means it landed. Invariant 5: no submit while the trade-update stream is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal
from typing import Any

import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
    TrailingStopOrderRequest,
)
from alpaca.trading.stream import TradingStream
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Histogram
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2, execution_pb2_grpc
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading_platform.decimals import from_proto, to_proto
from trading_platform.deployment import LeaseGuard, LeaseLost
from trading_platform.envelope import new_envelope
from trading_platform.messaging import ConsumedMessage, Consumer, PermanentError, Publisher, ensure_topics, replay
from trading_platform.observability import get_logger
from trading_platform.rpc import Servicer
from trading_platform.service import ServiceParts

from execution_service.budget import BrokerBudget
from execution_service.config import ExecutionSettings
from execution_service.engine import ExecutionEngine, InFlight, approval_mismatch

R = execution_pb2
log = get_logger("execution")
tracer = trace.get_tracer("execution")
SUBMITS = Counter("execution_submits_total", "order submissions", ["outcome"])
RATE_LIMITED_RETRY_S = 1.0  # after a 429, the next post of the same order waits this long, and for the budget
SUBMIT_TO_FILL = Histogram(
    "execution_submit_to_fill_seconds",
    "submit to last fill",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
)
SLIPPAGE = Histogram("execution_slippage_bps", "slippage against the arrival price", buckets=(-20, -5, -1, 0, 1, 5, 20))
TERMINAL_REPORTS = {
    execution_pb2.EXECUTION_REPORT_TYPE_FILL,
    execution_pb2.EXECUTION_REPORT_TYPE_CANCELED,
    execution_pb2.EXECUTION_REPORT_TYPE_EXPIRED,
    execution_pb2.EXECUTION_REPORT_TYPE_REJECTED,
}
CATCH_UP_RETRY_S = 1.0  # how soon a catch-up the broker did not answer is tried again
PRODUCED = ["execution.reports.v1", "execution.quality.v1", "execution.status.v1"]
TIF = {
    common_pb2.TIME_IN_FORCE_DAY: TimeInForce.DAY,
    common_pb2.TIME_IN_FORCE_GTC: TimeInForce.GTC,
    common_pb2.TIME_IN_FORCE_IOC: TimeInForce.IOC,
    common_pb2.TIME_IN_FORCE_FOK: TimeInForce.FOK,
    common_pb2.TIME_IN_FORCE_OPG: TimeInForce.OPG,
    common_pb2.TIME_IN_FORCE_CLS: TimeInForce.CLS,
}


class ConfirmedTradingStream(TradingStream):
    """TradingStream that notes the broker's "listening" confirmation of the trade_updates subscription. A connection
    that authenticates but never confirms is half-open: no trade update would ever arrive on it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.confirmed = False
        self.connected_at = time.monotonic()

    async def _start_ws(self) -> None:
        self.confirmed = False
        self.connected_at = time.monotonic()
        await super()._start_ws()

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("stream") == "listening" and "trade_updates" in msg.get("data", {}).get("streams", []):
            self.confirmed = True
        await super()._dispatch(msg)


class ExecutionApp(execution_pb2_grpc.ExecutionServiceServicer):
    def __init__(self, settings: ExecutionSettings) -> None:
        self.settings = settings
        broker = settings.broker
        key, secret = broker.api_key_id.get_secret_value(), broker.api_secret_key.get_secret_value()
        self.client = TradingClient(key, secret, paper=broker.paper, url_override=broker.base_url or None)
        self.client._retry = 0  # we decide about retries: an ambiguous submit is looked up, never re-posted
        stream_url = broker.trading_stream_url or broker.stream_url("/stream")
        self.stream = ConfirmedTradingStream(key, secret, paper=broker.paper, raw_data=True, url_override=stream_url)
        self.stream.subscribe_trade_updates(self.on_trade_update)
        kafka = settings.kafka
        self.shadow = settings.deployment.shadow
        self.publisher = Publisher(
            kafka.connection(),
            "execution",
            namespace=kafka.namespace,
            shadow=self.shadow,
        )
        options = kafka.group_options()
        self.commands = Consumer(
            kafka.connection(),
            "execution",
            ["oms.commands.v1"],
            self.on_command,
            publisher=self.publisher,
            namespace=kafka.namespace,
            shadow=self.shadow,
            group_options=options,
            concurrent_keys=True,  # orders (keyed by client order id) are submitted side by side
            # Without offsets, from the beginning: an approved command must never be skipped, and one already done
            # is found at the broker by its client order id, not posted again.
            auto_offset_reset="earliest",
        )
        # Approvals: every instance reads the decisions of the last approval_horizon_s (its own group per process
        # start), then every new one.
        horizon_ms = int(settings.execution.approval_horizon_s * 1000)
        self.decisions = Consumer(
            kafka.connection(),
            f"execution-approvals-{time.time_ns()}",
            ["risk.decisions.v1"],
            self.on_decision,
            publisher=self.publisher,
            namespace=kafka.namespace,
            group_options=options,
            auto_offset_reset="earliest",
            start_at_ms=lambda: time.time_ns() // 1_000_000 - horizon_ms,
        )
        # The kill switch: risk's trading-state changes, from the group's committed offset (or the end, for a group
        # that has none), so a restart never acts on a halt again that it already acted on, nor on an old one.
        self.kill_switch = Consumer(
            kafka.connection(),
            "execution-kill-switch",
            ["risk.state.v1"],
            self.on_trading_state,
            publisher=self.publisher,
            namespace=kafka.namespace,
            shadow=self.shadow,
            group_options=options,
            auto_offset_reset="latest",
        )
        self.engine = ExecutionEngine()
        self.approved: dict[str, risk_pb2.RiskDecision] = {}  # client order id -> its approving risk decision
        self.approval_waiters: dict[str, asyncio.Event] = {}
        self.report_lock = asyncio.Lock()
        self.resolving: set[str] = set()  # client order ids of ambiguous submits being looked up: in flight
        execution = settings.execution
        self.budget = BrokerBudget(execution.requests_per_minute, execution.reserved_requests_per_minute)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.stream_up = False
        # A catch-up the broker did not answer is tried again from then on (monotonic), while the stream is up:
        # what it was to report (the updates lost in a gap) would otherwise never be reported.
        self.catch_up_retry_at: float | None = None
        self.trace_contexts: dict[str, otel_context.Context] = {}
        # The live lease (blue-green): checked right before every submit and cancel that goes to the broker.
        self.lease = LeaseGuard("execution")

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        kafka = self.settings.kafka
        await ensure_topics(
            kafka.connection(),
            [*PRODUCED, "oms.commands.v1", "oms.commands.v1.dlq", "risk.decisions.v1", "risk.state.v1"],
            namespace=kafka.namespace,
            shadow=self.shadow,
        )
        self.loop = asyncio.get_running_loop()
        await self.publisher.start()
        since_ms = time.time_ns() // 1_000_000 - int(self.settings.execution.reports_horizon_s * 1000)
        reports = replay(kafka.connection(), "execution.reports.v1", namespace=kafka.namespace, since_ms=since_ms)
        async for message in reports:
            self.engine.remember(message.value)  # type: ignore[arg-type]
        await self.decisions.start()
        await self.kill_switch.start()
        await self.commands.start()
        self.tasks = [
            asyncio.create_task(self.decisions.run()),
            asyncio.create_task(self.kill_switch.run()),
            asyncio.create_task(self.commands.run()),
        ]
        if not self.shadow:  # the idle colour never holds the broker connection
            self.tasks += [asyncio.create_task(self.stream._run_forever()), asyncio.create_task(self.watch_stream())]

    async def stop(self) -> None:
        # The broker connection goes first: without the trade-update stream nothing more is submitted (fail
        # closed), and in blue-green the next colour is waiting for this colour to let go of it.
        if not self.shadow:
            await self.stream.stop_ws()
        await self.commands.stop()
        await self.kill_switch.stop()
        await self.decisions.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.stream.close()
        await self.commands.close()
        await self.kill_switch.close()
        await self.decisions.close()
        await self.publisher.stop()

    async def watch_stream(self) -> None:
        """Publish BrokerConnectionChanged when the trade-update stream goes up or down; catch up after a gap."""
        while True:
            connected = bool(self.stream._running and self.stream._ws is not None)
            up = connected and self.stream.confirmed
            unconfirmed_s = time.monotonic() - self.stream.connected_at
            if connected and not self.stream.confirmed and unconfirmed_s > self.settings.execution.listen_confirm_s:
                # Half-open: authenticated, never confirmed. Close it; the stream's own loop reconnects.
                log.warning("trade-update stream half-open: no listening confirmation, reconnecting")
                self.stream.connected_at = time.monotonic()
                with contextlib.suppress(Exception):
                    await self.stream._ws.close()
            if up != self.stream_up:
                self.stream_up = up
                await self.publisher.publish(
                    "execution.status.v1",
                    execution_pb2.BrokerConnectionChanged(
                        envelope=new_envelope("execution"),
                        trading_connected=True,
                        trade_updates_connected=up,
                        reason="trade-update stream " + ("connected" if up else "half-open" if connected else "lost"),
                    ),
                    key="_broker",
                )
                log.info("trade-update stream", connected=up)
                if up:
                    await self.catch_up()
            elif up and self.catch_up_retry_at is not None and time.monotonic() >= self.catch_up_retry_at:
                await self.catch_up()
            await asyncio.sleep(0.1)

    async def catch_up(self) -> None:
        """After a start or a gap in the stream: report what the broker did while nobody listened, by comparing
        its orders with what execution.reports.v1 already says (folded at start-up)."""
        try:
            orders = await self.budget.call(
                self.client.get_orders, GetOrdersRequest(status=QueryOrderStatus.ALL, limit=500)
            )
        except (APIError, requests.RequestException) as error:
            log.error("catch-up failed: broker orders unavailable; trying again", error=str(error))
            self.catch_up_retry_at = time.monotonic() + CATCH_UP_RETRY_S
            return
        self.catch_up_retry_at = None
        for order in sorted(orders, key=lambda o: o.created_at):  # type: ignore[union-attr]
            for update in self.engine.catch_up_updates(order.model_dump(mode="json")):  # type: ignore[union-attr]
                log.info(
                    "catch-up report", client_order_id=update["order"]["client_order_id"], trade_event=update["event"]
                )
                await self._report(update)

    # -- bus handlers ------------------------------------------------------------------------------------------
    async def on_decision(self, message: ConsumedMessage) -> None:
        decision: Any = message.value
        if decision.approved:
            self.approved[decision.client_order_id] = decision
            waiter = self.approval_waiters.pop(decision.client_order_id, None)
            if waiter is not None:
                waiter.set()

    async def on_command(self, message: ConsumedMessage) -> None:
        command: Any = message.value
        kind = command.WhichOneof("command")
        if kind == "submit_order":
            if self._age_s(command) > self.settings.execution.max_command_age_s:
                await self._refuse_too_old(command.submit_order, command)
            await self.submit(command.submit_order, command)
        elif kind == "cancel_order":
            await self.cancel(command.cancel_order.client_order_id)
        elif kind == "cancel_all_orders":
            await self.cancel_all(command.cancel_all_orders.reason)

    async def on_trading_state(self, message: ConsumedMessage) -> None:
        change: Any = message.value
        if change.state == risk_pb2.TRADING_STATE_HALTED and change.cancel_open_orders:
            await self.cancel_all(f"kill switch: {change.reason} ({change.actor})")

    async def cancel_all(self, reason: str) -> None:
        """Cancel every open order at the broker (the shadow colour never talks to the broker)."""
        if not self.shadow and self._lease_refuses("cancel all orders") is None:
            await self.budget.call(self.client.cancel_orders)
        log.warning("cancel all orders", reason=reason, shadow=self.shadow)

    async def submit(self, order: oms_pb2.SubmitOrder, command: oms_pb2.OrderCommand) -> None:
        cid = order.client_order_id
        if self._reported_on(cid):
            return
        decision_id = order.lineage.risk_decision_id
        if decision_id and self._approval_id(cid) != decision_id:  # the decision may still be on its way: wake on it
            waiter = self.approval_waiters.setdefault(cid, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), self.settings.execution.approval_wait_s)
            self.approval_waiters.pop(cid, None)
        if not decision_id or self._approval_id(cid) != decision_id:
            SUBMITS.labels("refused_no_approval").inc()
            await self._reject(order, command, "no approved risk decision names this order", R.REFUSAL_CODE_NO_APPROVAL)
            return
        mismatch = approval_mismatch(self.approved[cid], order)
        if mismatch is not None:  # not the order risk approved: never sent (invariant 1)
            SUBMITS.labels("refused_approval_mismatch").inc()
            await self._reject(order, command, mismatch, R.REFUSAL_CODE_APPROVAL_MISMATCH)
            return
        try:
            request = self._request(order)
        except ValueError as error:  # pydantic's ValidationError is one: it names the field
            SUBMITS.labels("refused_invalid").inc()
            reason = " ".join(str(error).split())
            await self._reject(order, command, f"invalid order: {reason}", R.REFUSAL_CODE_INVALID_ORDER)
            return
        if self.shadow:
            log.info("shadow: not submitting", client_order_id=cid)
            return
        if cid in self.resolving or cid in self.engine.unresolved:
            # An ambiguous submit of it is being looked up, or was never resolved: it may be at the broker already.
            log.warning("command for an ambiguous submit not sent again", client_order_id=cid)
            return
        deadline = time.monotonic() + self.settings.execution.stream_wait_s
        while not self.stream_up and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not self.stream_up:  # fail closed: without trade updates we could not see what happens to it
            SUBMITS.labels("refused_stream_down").inc()
            await self._reject(order, command, "trade-update stream is down", R.REFUSAL_CODE_STREAM_DOWN)
            return
        # Trade updates arrive on the stream with no trace context: keep the submit's, so one trace runs bar -> fill.
        self.trace_contexts[cid] = otel_context.get_current()
        self.engine.inflight[cid] = InFlight(
            cid,
            order.symbol,
            order.side,
            from_proto(order.quantity) or Decimal(0),
            from_proto(order.arrival_price) or Decimal(0),
            time.time_ns(),
        )
        while True:  # a 429 is the broker refusing the request before taking it: posted again once there is room
            try:
                await self._submit_turn(order, command)
            except PermanentError:
                self._forget(cid)
                raise
            if self._reported_on(cid):  # a catch-up may have reported it while this command waited
                self._forget(cid)
                return
            refused = self._lease_refuses(f"submit order {cid}")  # last check before the broker: after every wait
            if refused is not None:
                SUBMITS.labels("refused_no_lease").inc()
                self._forget(cid)
                await self._reject(order, command, refused, R.REFUSAL_CODE_LEASE_NOT_HELD)
                return
            try:
                with tracer.start_as_current_span("broker submit") as span:
                    span.set_attribute("client_order_id", cid)
                    await asyncio.wait_for(
                        asyncio.to_thread(self.client.submit_order, request), self.settings.execution.submit_timeout_s
                    )
                SUBMITS.labels("accepted").inc()
            except APIError as error:
                if error.status_code == 429:  # not taken, so it did not land; should it have, the id is unique (422)
                    SUBMITS.labels("rate_limited").inc()
                    log.warning("broker rate limit: the submit was not taken; posting it again", client_order_id=cid)
                    await asyncio.sleep(RATE_LIMITED_RETRY_S)
                    continue
                if error.status_code == 422 and "unique" in str(error):
                    SUBMITS.labels("duplicate_landed").inc()  # it landed before: fetch it, do not post again
                    await self._resolve(cid)
                elif error.status_code is not None and error.status_code < 500:
                    SUBMITS.labels("rejected").inc()
                    self.engine.inflight.pop(cid, None)
                    await self._reject(order, command, f"broker rejected: {error}", R.REFUSAL_CODE_BROKER_REJECTED)
                else:
                    SUBMITS.labels("ambiguous").inc()
                    await self._resolve(cid, order=order, command=command)
            except (TimeoutError, requests.RequestException) as error:
                SUBMITS.labels("ambiguous").inc()
                log.warning("ambiguous submit, resolving by client order id", client_order_id=cid, error=str(error))
                await self._resolve(cid, order=order, command=command)
            return

    def _forget(self, cid: str) -> None:
        """A command that will not be posted after all is no longer in flight."""
        self.engine.inflight.pop(cid, None)
        self.trace_contexts.pop(cid, None)

    def _age_s(self, command: oms_pb2.OrderCommand) -> float:
        return (time.time_ns() - command.envelope.ts_init) / 1e9

    async def _submit_turn(self, order: oms_pb2.SubmitOrder, command: oms_pb2.OrderCommand) -> None:
        """Wait for a submit's turn in the broker's budget while the command is young enough; refused the moment it
        is not (a storm beyond the budget is answered within the age limit, not when its turn would have come)."""
        left_s = self.settings.execution.max_command_age_s - self._age_s(command)
        try:
            await asyncio.wait_for(self.budget.submit_turn(), max(0.0, left_s))
        except TimeoutError:
            await self._refuse_too_old(order, command)

    async def _refuse_too_old(self, order: oms_pb2.SubmitOrder, command: oms_pb2.OrderCommand) -> None:
        """A backlog (after an outage, or behind the broker's budget) is never traded at market: a command made longer
        ago than MAX_COMMAND_AGE_S is refused (REJECTED, so order-management closes it) and dead-lettered."""
        limit_s = self.settings.execution.max_command_age_s
        reason = f"command is {self._age_s(command):.1f} s old, older than EXECUTION__MAX_COMMAND_AGE_S={limit_s:g}"
        SUBMITS.labels("refused_too_old").inc()
        await self._reject(order, command, reason, R.REFUSAL_CODE_COMMAND_TOO_OLD)
        raise PermanentError(reason, reason_code="message_too_old")

    async def _resolve(
        self, cid: str, order: oms_pb2.SubmitOrder | None = None, command: oms_pb2.OrderCommand | None = None
    ) -> None:
        """After an ambiguous submit, look the order up at the broker by its client order id, again and again, and
        never send it again (invariant 2): a request that timed out may still land. Meanwhile the id counts as in
        flight (a redelivered command for it is not sent). Found: the stream reports it (catch_up covers a missed
        update). Not shown within resolve_timeout_s: a REJECTED report with REFUSAL_CODE_UNRESOLVED (fail closed);
        should the order appear later, its trade updates are still reported, and order-management's reconciliation
        sees a broker order its book has closed."""
        timeout_s = self.settings.execution.resolve_timeout_s
        deadline = time.monotonic() + timeout_s
        self.resolving.add(cid)
        last = "none"
        attempt = 0
        try:
            while True:
                try:
                    found = await self.budget.call(self.client.get_order_by_client_id, cid)
                    log.info(
                        "ambiguous submit resolved: order is at the broker",
                        client_order_id=cid,
                        status=str(found.status),  # type: ignore[union-attr]
                    )
                    await self.catch_up()
                    return
                except APIError as error:
                    last = f"HTTP {error.status_code}"
                except requests.RequestException as error:
                    last = type(error).__name__
                if time.monotonic() >= deadline:
                    break
                attempt += 1
                await asyncio.sleep(min(1.0, 0.1 * attempt))
        finally:
            self.resolving.discard(cid)
        SUBMITS.labels("unresolved").inc()
        self.engine.inflight.pop(cid, None)
        reason = (
            f"ambiguous submit unresolved: the broker did not show {cid} within {timeout_s:g} s "
            f"(last lookup: {last}); it was not sent again"
        )
        if order is None or command is None:
            log.error(reason, client_order_id=cid)
            return
        await self._reject(order, command, reason, R.REFUSAL_CODE_UNRESOLVED)
        self.engine.unresolved.add(cid)

    def _lease_refuses(self, act: str) -> str | None:
        """None when this instance may act on the broker now (it holds the live lease, or runs without blue-green);
        otherwise why not, logged: the act must not happen."""
        try:
            self.lease.check(act)
        except LeaseLost as error:
            log.error("broker act refused: live lease not held", act=act, token=error.token, reason=error.reason)
            return str(error)
        return None

    async def cancel(self, client_order_id: str) -> None:
        if self.shadow:
            return
        try:
            found = await self.budget.call(self.client.get_order_by_client_id, client_order_id)
            refused = self._lease_refuses(f"cancel order {client_order_id}")  # right before the act
            if refused is None:
                await self.budget.call(self.client.cancel_order_by_id, found.id)
        except APIError as error:
            refused = f"cancel refused: {error}"
        if refused is not None:
            report = execution_pb2.ExecutionReport(
                envelope=new_envelope("execution"),
                report_type=execution_pb2.EXECUTION_REPORT_TYPE_CANCEL_REJECTED,
                client_order_id=client_order_id,
                reason=refused,
            )
            await self.publisher.publish("execution.reports.v1", report, key=client_order_id)

    def _request(self, order: oms_pb2.SubmitOrder) -> Any:
        """The alpaca-py request of a command: its order type with its prices, its time in force (DAY when the
        command names none). alpaca-py's models check what each type needs: ValueError names what is wrong."""
        common: dict[str, Any] = {
            "symbol": order.symbol,
            "qty": float(from_proto(order.quantity) or 0),
            "side": OrderSide.BUY if order.side == common_pb2.ORDER_SIDE_BUY else OrderSide.SELL,
            "time_in_force": TIF.get(order.time_in_force, TimeInForce.DAY),
            "client_order_id": order.client_order_id,
        }

        def price(field: str) -> float | None:
            value = from_proto(getattr(order, field), None)
            return float(value) if value is not None else None

        kind = order.order_type
        if kind in (common_pb2.ORDER_TYPE_MARKET, common_pb2.ORDER_TYPE_UNSPECIFIED):
            return MarketOrderRequest(**common)
        if kind == common_pb2.ORDER_TYPE_LIMIT:
            return LimitOrderRequest(limit_price=price("limit_price"), **common)
        if kind == common_pb2.ORDER_TYPE_STOP:
            return StopOrderRequest(stop_price=price("stop_price"), **common)
        if kind == common_pb2.ORDER_TYPE_STOP_LIMIT:
            return StopLimitOrderRequest(stop_price=price("stop_price"), limit_price=price("limit_price"), **common)
        if kind == common_pb2.ORDER_TYPE_TRAILING_STOP:
            return TrailingStopOrderRequest(
                trail_price=price("trail_price"), trail_percent=price("trail_percent"), **common
            )
        raise ValueError(f"order_type {kind} is not an order type execution knows")

    def _approval_id(self, cid: str) -> str | None:
        approval = self.approved.get(cid)
        return approval.envelope.message_id if approval is not None else None

    def _reported_on(self, cid: str) -> bool:
        """Whether execution has reported on this order (refused it, or the broker did something with it): then its
        command came again after a restart, or a catch-up reported it while the command waited. Refused, it is closed
        at order-management, so sending it would put an order at the broker that nothing expects; at the broker,
        refusing it would close at order-management an order that is live (fail closed): it is neither."""
        if cid not in self.engine.said:
            return False
        SUBMITS.labels("already_reported").inc()
        log.warning("command for an order already reported on: neither sent nor refused", client_order_id=cid)
        return True

    async def _reject(self, order: oms_pb2.SubmitOrder, command: oms_pb2.OrderCommand, reason: str, code: int) -> None:
        """A REJECTED report of a command execution refused: on the bus (so audited), with its refusal code; none for
        an order already reported on (it is refused already, or at the broker)."""
        if self._reported_on(order.client_order_id):
            return
        log.warning(
            "order refused", client_order_id=order.client_order_id, reason=reason, code=R.RefusalCode.Name(code)
        )
        report = execution_pb2.ExecutionReport(
            envelope=new_envelope("execution", cause=command),
            report_type=execution_pb2.EXECUTION_REPORT_TYPE_REJECTED,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            order_quantity=order.quantity,
            reason=reason,
            refusal_code=code,
        )
        await self.publisher.publish("execution.reports.v1", report, key=order.client_order_id)
        self.engine.remember(report)

    # -- trade updates -----------------------------------------------------------------------------------------
    async def on_trade_update(self, message: Any) -> None:
        await self._report(message.get("data", message) if isinstance(message, dict) else message)

    async def _report(self, update: dict[str, Any]) -> None:
        # One update at a time (the stream and a catch-up may overlap): what one report said is remembered before
        # the next is decided, so a fill is reported exactly once; one whose publish failed is not remembered, and
        # the next catch-up reports it.
        async with self.report_lock:
            report = self.engine.report_for(update, time.time_ns())
            if report is None:
                return
            report.envelope.CopyFrom(new_envelope("execution"))
            context = self.trace_contexts.get(report.client_order_id)
            token = otel_context.attach(context) if context is not None else None
            try:
                await self.publisher.publish("execution.reports.v1", report, key=report.client_order_id)
            finally:
                if token is not None:
                    otel_context.detach(token)
            self.engine.remember(report)
        if report.report_type in TERMINAL_REPORTS:
            self.trace_contexts.pop(report.client_order_id, None)
        quality = self.engine.quality(report.client_order_id)
        if quality is not None:
            quality.envelope.CopyFrom(new_envelope("execution", cause=report))
            if quality.submit_to_last_fill_ns:
                SUBMIT_TO_FILL.observe(quality.submit_to_last_fill_ns / 1e9)
                SLIPPAGE.observe(quality.slippage_bps)
            await self.publisher.publish("execution.quality.v1", quality, key=quality.client_order_id)

    # -- gRPC snapshots ----------------------------------------------------------------------------------------
    async def GetAccount(self, request: Any, context: Any) -> execution_pb2.BrokerAccount:
        account = await self.budget.call(self.client.get_account)
        return execution_pb2.BrokerAccount(
            account_id=str(account.account_number),
            cash=to_proto(account.cash),
            equity=to_proto(account.equity),
            buying_power=to_proto(account.buying_power),
            status=str(account.status),
        )

    async def GetBrokerPositions(self, request: Any, context: Any) -> execution_pb2.GetBrokerPositionsResponse:
        positions = await self.budget.call(self.client.get_all_positions)
        return execution_pb2.GetBrokerPositionsResponse(
            positions=[
                execution_pb2.BrokerPosition(
                    symbol=p.symbol,
                    quantity=to_proto(p.qty),
                    average_entry_price=to_proto(p.avg_entry_price),
                    market_value=to_proto(p.market_value or "0"),
                )
                for p in positions
            ]
        )

    async def GetBrokerOrders(self, request: Any, context: Any) -> execution_pb2.GetBrokerOrdersResponse:
        status = {"open": QueryOrderStatus.OPEN, "closed": QueryOrderStatus.CLOSED}.get(
            request.status, QueryOrderStatus.ALL
        )
        orders = await self.budget.call(
            self.client.get_orders, GetOrdersRequest(status=status, limit=request.limit or 500)
        )
        return execution_pb2.GetBrokerOrdersResponse(
            orders=[
                execution_pb2.BrokerOrder(
                    client_order_id=o.client_order_id,
                    broker_order_id=str(o.id),
                    symbol=o.symbol or "",
                    side=common_pb2.ORDER_SIDE_BUY if str(o.side).endswith("buy") else common_pb2.ORDER_SIDE_SELL,
                    quantity=to_proto(str(o.qty or 0)),
                    filled_quantity=to_proto(str(o.filled_qty or 0)),
                    average_fill_price=to_proto(str(o.filled_avg_price or 0)),
                    status=str(o.status.value if hasattr(o.status, "value") else o.status),
                )
                for o in orders
            ]
        )


async def build(settings: ExecutionSettings) -> ServiceParts:
    app = ExecutionApp(settings)
    return ServiceParts(
        components=[app],
        servicers=[
            Servicer(
                execution_pb2_grpc.add_ExecutionServiceServicer_to_server, app, "trading.execution.v1.ExecutionService"
            )
        ],
        live_lease=True,
        lease=app.lease,
    )
