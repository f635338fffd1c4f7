"""Order-management wiring: signals and execution reports in, risk over gRPC, order commands and events out.

Every write is a Kafka transaction. A consumed batch of signals and execution reports, the order events and commands
its handlers publish, and the batch's consumed offsets commit together (the transactional consumer), so an order's
event and its command land together or not at all, and a signal counts as handled exactly when what it caused is in
the log. A manual order or cancel over gRPC runs its own short transaction. The transactional id is one per logical
instance, `<namespace>order-management-<live|shadow>`: a restarted instance (or the other blue-green colour taking
the live role) fences the previous holder of the id, whose next transaction fails.

Start-up order (invariant 4 of docs/architecture.md): open the transactional producer (which fences an older holder of
the id and ends its open transaction), restore the latest snapshot and replay the oms.events.v1 after it
(read_committed), reconcile with the broker (through execution's snapshot RPCs), and only then consume. A reconciliation
mismatch blocks new orders until it clears.

The book is changed as handlers run, before their transaction commits. So when a transaction aborts (a handler error,
a failed commit) the book may hold effects that never reached the log: the consumer stops, the book is rebuilt from
the log, reconciled, and only then does consuming resume (the aborted batch is delivered again). A fenced producer,
or aborts that keep coming, stop the service instead: it logs why and asks the runner to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal as os_signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import grpc
from prometheus_client import Histogram
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2, execution_pb2_grpc
from trading.oms.v1 import oms_pb2, oms_pb2_grpc
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.decimals import from_proto, to_proto
from trading_platform.deployment import DeploymentControl
from trading_platform.envelope import new_envelope
from trading_platform.identity import current_identity
from trading_platform.ids import client_order_id as derive_client_order_id
from trading_platform.ids import new_message_id
from trading_platform.messaging import (
    ConsumedMessage,
    Consumer,
    MemoryIdempotencyStore,
    PermanentError,
    Publisher,
    ensure_topics,
    replay,
)
from trading_platform.observability import get_logger
from trading_platform.rpc import Servicer, channel
from trading_platform.service import ServiceParts

from oms_service.config import OmsSettings
from oms_service.engine import OPEN, OrderBook, OrderTerms, check_request, new_order

log = get_logger("order-management")
S = oms_pb2
PRODUCED = ["oms.commands.v1", "oms.events.v1", "oms.positions.v1", "oms.reconciliation.v1", "oms.snapshots.v1"]
CONSUMED = ["signal.signals.v1", "execution.reports.v1"]
GROUP = "order-management"
# Aborted transactions the service rebuilds its book after, within RECOVERY_WINDOW_S, before it stops instead.
MAX_RECOVERIES = 3
RECOVERY_WINDOW_S = 60.0
STOP_TIMEOUT_S = 10.0
# Error types that mean another producer took this transactional id (or the broker timed ours out): this instance
# must never write again. aiokafka raises ProducerFenced (also for INVALID_PRODUCER_EPOCH).
FENCED_ERRORS = {"ProducerFenced", "InvalidProducerEpoch", "TransactionalIdAuthorizationFailed"}
# Why the service asked the runner to stop (read by __main__ for the exit code).
HALTED: list[str] = []
ORDERS_LIMIT = 500  # the broker's most recent orders reconciliation reads
ORDERS_PER_TRANSACTION = Histogram(
    "oms_orders_per_transaction", "manual orders written in one committed transaction", buckets=(1, 2, 4, 8, 16, 32, 64)
)


def transactional_id(namespace: str, shadow: bool) -> str:
    """Stable per logical instance: the live and the shadow colour each have one, so a restarted or second instance
    of a role fences the previous one, and a shadow colour (publishing to shadow topics) never fences the live one."""
    return f"{namespace}order-management-{'shadow' if shadow else 'live'}"


def is_fenced(error: BaseException) -> bool:
    """Whether error (or what caused it) says this producer was fenced."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names = {type(current).__name__, *(t.__name__ for t in type(current).__mro__)}
        if names & FENCED_ERRORS or "fenced" in type(current).__name__.lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def _stop_the_process(reason: str) -> None:
    """The service's halt: the runner stops on SIGTERM as it would for the supervisor, and __main__ exits non-zero."""
    HALTED.append(reason)
    os_signal.raise_signal(os_signal.SIGTERM)


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


class InFlight:
    """Counts the gRPC transactions under way, so a rebuild can wait until each has committed or aborted."""

    def __init__(self) -> None:
        self.count = 0
        self._none = asyncio.Event()
        self._none.set()

    @asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        self.count += 1
        self._none.clear()
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._none.set()

    async def drained(self) -> None:
        await self._none.wait()


ABANDONED = oms_pb2.SubmitOrderResponse(
    accepted=False,
    reason_code="ABANDONED",
    reason="the caller gave up before the order's turn came; nothing was written",
)


class QueuedOrder:
    """A manual order waiting for the writer, and the answer its caller awaits."""

    def __init__(self, request: oms_pb2.SubmitOrderRequest, quantity: Decimal, terms: OrderTerms) -> None:
        self.request, self.quantity, self.terms = request, quantity, terms
        caller = current_identity()  # the verified caller, never a field of the request (read in the handler)
        self.submitted_by = caller.actor if caller else ""
        self.answer: asyncio.Future[oms_pb2.SubmitOrderResponse] = asyncio.get_running_loop().create_future()
        self.abandoned = False  # its caller gave up: dropped unwritten if its turn has not come

    def answered_unwritten(self) -> bool:
        """Whether it is dropped before its batch begins (its caller gave up): answered ABANDONED."""
        if self.abandoned and not self.answer.done():
            self.answer.set_result(ABANDONED)
        return self.abandoned


class OmsApp(oms_pb2_grpc.OrderServiceServicer):
    def __init__(self, settings: OmsSettings, on_halt: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.config = settings.oms
        kafka = settings.kafka
        self.connection = kafka.connection()
        self.shadow = settings.deployment.shadow
        self.transactional_id = transactional_id(kafka.namespace, self.shadow)
        self.book = OrderBook()
        # Per partition of oms.events.v1, the offset after the last event the book holds (from the rebuild, then from
        # each event's ack): what a snapshot of the book covers.
        self.event_offsets: dict[int, int] = {}
        self.snapshot_at_events = 0  # events_applied at the last snapshot
        self.idempotency = MemoryIdempotencyStore()
        self.publisher = self.new_publisher()
        self.consumer: Consumer | None = None  # made after each rebuild, with the handled ids of the rebuilt book
        self.risk_channel = channel(self.config.risk_address, self.config.risk_timeout_s)  # mTLS as order-management
        self.execution_channel = channel(self.config.execution_address, 5.0)
        self.risk = risk_pb2_grpc.RiskServiceStub(self.risk_channel)
        self.execution = execution_pb2_grpc.ExecutionServiceStub(self.execution_channel)
        # The broker's account equity, sizing's base: None until the broker has said it (or when it did not say).
        self.equity: Decimal | None = None
        self.trading_blocked = True  # until the first reconciliation passes
        self.pending_since: dict[str, float] = {}  # discrepancies a message in flight may explain: first seen
        self.open_orders = (0, 0)  # ours, the broker's, at the last reconciliation
        self.locks = BookLocks()
        self.grpc_writes = InFlight()
        # SubmitOrder's orders: waiting for the writer or being written (the answers their callers await).
        self.order_writes: set[asyncio.Future[oms_pb2.SubmitOrderResponse]] = set()
        self.orders_waiting: list[QueuedOrder] = []
        self.order_arrived = asyncio.Event()
        self.on_halt = on_halt
        self.halted: str | None = None  # why this instance stopped writing
        self.stopping = False
        self.recovering = False
        self.recoveries: list[float] = []  # monotonic times of the recent rebuilds after an abort
        self.consuming: asyncio.Task[None] | None = None
        self.recovery: asyncio.Task[None] | None = None
        self.tasks: list[asyncio.Task[Any]] = []

    def new_publisher(self) -> Publisher:
        kafka = self.settings.kafka
        return Publisher(
            self.connection,
            "order-management",
            namespace=kafka.namespace,
            shadow=self.shadow,
            transactional_id=self.transactional_id,
        )

    async def renew_publisher(self) -> None:
        """A new transactional producer under the same id, after an aborted transaction. The aborted one may have
        had a send refused (a record too large, a partition it may not write): aiokafka has then already counted
        that batch's sequence numbers, which the broker never saw, and its next send to that partition fails with
        OutOfOrderSequenceNumber, every time. Initialising the id again bumps its epoch and starts the sequences
        afresh (and, as at start, ends any transaction of the old producer before the replay reads the log)."""
        old = self.publisher
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.stop(), STOP_TIMEOUT_S)
        self.publisher = self.new_publisher()
        await self.publisher.start()

    def new_consumer(self) -> Consumer:
        kafka = self.settings.kafka
        return Consumer(
            self.connection,
            GROUP,
            CONSUMED,
            self.on_message,
            publisher=self.publisher,
            idempotency=self.idempotency,
            namespace=kafka.namespace,
            shadow=self.shadow,
            group_options=kafka.group_options(),
            transactional=True,  # the batch's events, commands and offsets in one transaction
            # A failed handler may have sent part of its records into the transaction and changed the book: trying it
            # again on that book could commit half an order. One attempt: the batch aborts and the book is rebuilt.
            max_attempts=1,
            concurrent_keys=True,  # signals (by symbol) and reports (by order) side by side; BookLocks orders a symbol
        )

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        kafka = self.settings.kafka
        await ensure_topics(
            self.connection,
            PRODUCED + CONSUMED + [f"{topic}.dlq" for topic in CONSUMED],  # signals too old are dead-lettered
            namespace=kafka.namespace,
            shadow=self.shadow,
        )
        # First the producer: initialising the transactional id fences an older holder of it and ends (aborts) its
        # open transaction, so the replay below reads a log that instance can no longer add to.
        await self.publisher.start()
        await self.rebuild()
        await self.reconcile()
        self.consumer = self.new_consumer()
        await self.consumer.start()
        self.consuming = asyncio.create_task(self.consume(self.consumer))
        self.tasks = [asyncio.create_task(self.reconcile_periodically()), asyncio.create_task(self.write_orders())]
        if not self.shadow:  # the shadow colour's book is not the book of record
            self.tasks.append(asyncio.create_task(self.snapshot_periodically()))

    async def stop(self) -> None:
        self.stopping = True
        if self.recovery is not None:
            self.recovery.cancel()
            await asyncio.gather(self.recovery, return_exceptions=True)
        if self.consumer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.consumer.stop(), STOP_TIMEOUT_S)  # the batch in flight commits
        if self.order_writes:  # manual orders being written end first (their transactions commit or abort)
            await asyncio.wait(set(self.order_writes), timeout=STOP_TIMEOUT_S)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.consuming is not None:  # a handler that hangs is cancelled: its batch is not committed
            await asyncio.wait({self.consuming}, timeout=STOP_TIMEOUT_S)
            self.consuming.cancel()
            await asyncio.gather(self.consuming, return_exceptions=True)
        if self.consumer is not None:
            with contextlib.suppress(Exception):  # a consumer that failed may not close cleanly: nothing depends on it
                await self.consumer.close()
        await self.publisher.stop()
        await self.risk_channel.close()
        await self.execution_channel.close()

    async def rebuild(self) -> None:
        """The book is the latest snapshot (oms.snapshots.v1) plus the fold of the events after it in oms.events.v1,
        read_committed: an aborted transaction's events are not in it. The cost is bounded by the snapshot interval,
        not by the log's whole history."""
        kafka = self.settings.kafka
        started = time.monotonic()
        snapshot: oms_pb2.OrderBookSnapshot | None = None
        # Both colours start from the book of record (the live log and the live colour's snapshots): a shadow colour
        # then follows the live inputs and writes its own decisions to shadow topics, so its book stays the one it
        # would keep if it were live.
        async for message in replay(self.connection, "oms.snapshots.v1", namespace=kafka.namespace, last=4):
            snapshot = message.value  # type: ignore[assignment]
        book = OrderBook.restored(snapshot) if snapshot is not None else OrderBook()
        offsets = dict(snapshot.event_offsets) if snapshot is not None else {}
        events = []
        async for message in replay(
            self.connection, "oms.events.v1", namespace=kafka.namespace, start_offsets=offsets or None
        ):
            events.append(message.value)
            offsets[message.partition] = message.offset + 1
        book.apply_all(events)  # type: ignore[arg-type]
        replayed = len(events)
        idempotency = MemoryIdempotencyStore()
        for message_id in book.handled_message_ids:
            await idempotency.mark(message_id)
        self.book, self.idempotency, self.event_offsets = book, idempotency, offsets
        self.snapshot_at_events = book.events_applied - replayed
        log.info(
            "order book rebuilt from the event log",
            snapshot_events=self.snapshot_at_events if snapshot is not None else None,
            events_replayed=replayed,
            orders=len(book.orders),
            seconds=round(time.monotonic() - started, 3),
        )

    async def snapshot_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.config.snapshot_check_s)
            if self.book.events_applied - self.snapshot_at_events >= self.config.snapshot_every_events:
                await self.write_snapshot()

    async def write_snapshot(self) -> None:
        """Between transactions (holding the publisher's), the book is exactly the committed log up to
        event_offsets: write it as a snapshot, in a transaction of its own."""
        if self.recovering or self.halted is not None or self.stopping:
            return
        try:
            async with self.publisher.transaction():
                if self.recovering or self.halted is not None:
                    return
                snapshot = self.book.snapshot(dict(self.event_offsets))
                snapshot.envelope.CopyFrom(new_envelope("order-management"))
                await self.publisher.publish("oms.snapshots.v1", snapshot, key="_book")
            self.snapshot_at_events = snapshot.events_applied
            log.info("book snapshot written", events=snapshot.events_applied, orders=len(snapshot.orders))
        except Exception as error:
            if is_fenced(error):
                self.halt("fenced while writing a snapshot", error)
            else:  # only the next start's cost: it replays more events
                log.warning("book snapshot not written", error=f"{type(error).__name__}: {error}")

    async def consume(self, consumer: Consumer) -> None:
        """Run the consumer; if a transaction aborts, its run() raises and the book is rebuilt (or the service
        stops)."""
        try:
            await consumer.run()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not self.stopping and consumer is self.consumer:
                self.transaction_failed(error, "consumer")

    def transaction_failed(self, error: BaseException, where: str) -> None:
        """A transaction that changed the book aborted: rebuild the book from the log, or stop."""
        self.trading_blocked = True
        if self.stopping or self.halted is not None:
            return
        if is_fenced(error):
            self.halt(
                "fenced: another instance initialised this transactional id, so this one must not write again",
                error,
            )
            return
        now = time.monotonic()
        self.recoveries = [t for t in self.recoveries if now - t < RECOVERY_WINDOW_S] + [now]
        if len(self.recoveries) > MAX_RECOVERIES:
            self.halt(f"{len(self.recoveries)} aborted transactions in {RECOVERY_WINDOW_S:.0f} s", error)
            return
        if self.recovery is None or self.recovery.done():
            log.error(
                "transaction aborted: the book may hold effects that never reached the log; rebuilding it from the "
                "log before anything else is sent",
                where=where,
                error=f"{type(error).__name__}: {error}",
                transactional_id=self.transactional_id,
            )
            # Recovering from now on, not from when the task starts: a snapshot waiting for the transaction lock
            # (which the abort released) must not write this book, which still holds the aborted batch's effects.
            self.recovering = True
            self.recovery = asyncio.create_task(self.recover())

    def halt(self, reason: str, error: BaseException | None = None) -> None:
        """Stop writing for good: no more consuming, no gRPC writes; the runner is asked to stop the service so its
        supervisor can start it again (from the log)."""
        if self.halted is not None:
            return
        self.halted = reason
        self.trading_blocked = True
        log.error(
            "order-management stops writing: its book may differ from the log",
            reason=reason,
            error=f"{type(error).__name__}: {error}" if error is not None else None,
            transactional_id=self.transactional_id,
        )
        # The consumer's next transaction would fail too: stop it now and leave the group, so its partitions go to
        # the instance that fenced this one.
        if self.consumer is not None:
            self.tasks.append(asyncio.create_task(self.leave_group(self.consumer)))
        if self.on_halt is None:
            return
        if error is not None and is_fenced(error) and self.settings.deployment.blue_green:
            self.tasks.append(asyncio.create_task(self.halt_unless_role_moved(reason)))
        else:
            self.on_halt(reason)

    async def halt_unless_role_moved(self, reason: str) -> None:
        """In blue-green, the colour taking over this role fences this one (there is no live lease to wait for): the
        runner restarts it in its new role anyway, so only a fencing with the role unchanged stops the service."""
        deployment = self.settings.deployment
        role = None
        with contextlib.suppress(Exception):
            control = DeploymentControl.from_url(
                self.settings.redis.url, self.settings.service_name, self.settings.kafka.namespace
            )
            try:
                role = await asyncio.wait_for(control.role_of(deployment.colour), 2.0)
            finally:
                await control.close()
        if role is not None and role != deployment.role:
            log.info(
                "fenced by the colour that took over this role: waiting to restart in the new role",
                colour=deployment.colour,
                role=role,
            )
            return
        if self.on_halt is not None:
            self.on_halt(reason)

    @staticmethod
    async def leave_group(consumer: Consumer) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), STOP_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await consumer.close()

    async def recover(self) -> None:
        """Stop consuming, wait for the gRPC transactions under way to end, rebuild the book from the log,
        reconcile, and consume again from the committed offsets (the aborted batch comes again)."""
        self.recovering = True
        try:
            old = self.consumer
            if old is not None:
                try:
                    await asyncio.wait_for(old.stop(), STOP_TIMEOUT_S)
                except TimeoutError:
                    self.halt("the consumer did not stop after an aborted transaction")
                    return
                await self.leave_group(old)  # a new member joins below: the aborted batch is delivered again
            await self.grpc_writes.drained()
            async with self.locks.whole_book():
                await self.renew_publisher()
                await self.rebuild()
                mismatches = await self.check_with_broker()
            if mismatches is not None:
                await self.publish_reconciliation(mismatches)
            if self.stopping or self.halted is not None:
                return
            self.consumer = self.new_consumer()
            await self.consumer.start()
            self.consuming = asyncio.create_task(self.consume(self.consumer))
            log.info("consuming again after the rebuild", transactional_id=self.transactional_id)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.halt("the book could not be rebuilt from the log", error)
        finally:
            self.recovering = False

    async def reconcile(self) -> None:
        async with self.locks.whole_book():
            mismatches = await self.check_with_broker()
        if mismatches is not None:
            await self.publish_reconciliation(mismatches)

    async def check_with_broker(self) -> list[str]:
        """Compare the book with the broker (positions, and the broker's open orders with ours: open orders do not
        stop the check, the fills on them not yet reported are accounted for) and set trading_blocked; the
        mismatches to report. A discrepancy a message in flight may explain (an order open on one side only)
        becomes a mismatch once it has lasted OMS__RECONCILE_GRACE_S."""
        try:
            account = await self.execution.GetAccount(execution_pb2.GetAccountRequest(), timeout=5)
            positions, orders = await self.broker_snapshot()
        except grpc.aio.AioRpcError as error:
            self.trading_blocked = True
            return [f"broker snapshot unavailable: {error.code().name}"]
        self.equity = from_proto(account.equity, None)  # zero is a value (it sizes nothing); empty is missing
        if self.equity is None:
            log.error(
                "the broker's account has no equity: signals are not sized until it has", account=account.account_id
            )
        broker = {p.symbol: from_proto(p.quantity) or Decimal(0) for p in positions.positions}
        result = self.book.reconcile_with_orders(
            broker, orders.orders, self.config.reconcile_tolerance, orders_complete=len(orders.orders) < ORDERS_LIMIT
        )
        now = time.monotonic()
        self.pending_since = {key: self.pending_since.get(key, now) for key in result.pending}
        lasting = [
            f"{text} for {now - self.pending_since[key]:.0f} s"
            for key, text in result.pending.items()
            if now - self.pending_since[key] >= self.config.reconcile_grace_s
        ]
        mismatches = result.mismatches + lasting
        self.open_orders = (result.open_orders, result.broker_open_orders)
        # The shadow colour's book follows its own decisions, which never reach the broker, so it cannot match the
        # broker: it reports the difference and keeps deciding (blocking would leave nothing to compare at a
        # promotion). Promoted, it restarts from the book of record and reconciles as live, failing closed.
        self.trading_blocked = bool(mismatches) and not self.shadow
        return mismatches

    async def broker_snapshot(
        self,
    ) -> tuple[execution_pb2.GetBrokerPositionsResponse, execution_pb2.GetBrokerOrdersResponse]:
        """The broker's positions and recent orders as of one moment: the orders are read before and after the
        positions, and again while a fill or a status changed in between (a few times)."""
        request = execution_pb2.GetBrokerOrdersRequest(status="all", limit=ORDERS_LIMIT)
        before = await self.execution.GetBrokerOrders(request, timeout=5)
        for _ in range(3):
            positions = await self.execution.GetBrokerPositions(execution_pb2.GetBrokerPositionsRequest(), timeout=5)
            after = await self.execution.GetBrokerOrders(request, timeout=5)
            if after == before:
                break
            before = after
        return positions, after

    async def publish_reconciliation(self, mismatches: list[str]) -> None:
        if mismatches and self.trading_blocked:
            log.error("reconciliation failed: new orders blocked", mismatches=mismatches)
        elif mismatches:
            log.info("shadow book differs from the broker (expected: its orders are never sent)", mismatches=mismatches)
        if self.halted is not None:
            return
        report = oms_pb2.ReconciliationCompleted(
            envelope=new_envelope("order-management"),
            matched=not mismatches,
            mismatches=mismatches,
            trading_blocked=self.trading_blocked,
            open_orders=self.open_orders[0],
            broker_open_orders=self.open_orders[1],
        )
        try:
            async with self.publisher.transaction():  # a report of its own: the book is not changed by it
                await self.publisher.publish("oms.reconciliation.v1", report, key="_account")
        except Exception as error:
            if is_fenced(error):
                self.halt("fenced while reporting a reconciliation", error)
            else:
                log.warning("reconciliation report not published", error=f"{type(error).__name__}: {error}")

    async def reconcile_periodically(self) -> None:
        while True:
            # Blocked means no new orders: look again soon rather than wait a whole interval.
            await asyncio.sleep(1.0 if self.trading_blocked else self.config.reconcile_interval_s)
            if self.recovering or self.halted is not None:
                continue  # a rebuild reconciles when it is done
            await self.reconcile()

    async def on_message(self, message: ConsumedMessage) -> None:
        value: Any = message.value
        if message.topic == "signal.signals.v1":
            age_s = (time.time_ns() - value.envelope.ts_init) / 1e9
            if age_s > self.config.max_signal_age_s:  # a backlog after an outage is never traded: dead-lettered
                raise PermanentError(
                    f"signal is {age_s:.1f} s old, older than OMS__MAX_SIGNAL_AGE_S={self.config.max_signal_age_s:g}",
                    reason_code="message_too_old",
                )
            async with self.locks.symbol(value.symbol):
                # The signal's reference price (the bar close it saw) marks the position: no need to read every bar.
                self.book.mark(value.symbol, from_proto(value.reference_price) or Decimal(0))
                await self.on_signal(value)
        else:
            order = self.book.orders.get(value.client_order_id)
            async with self.locks.symbol(order.symbol if order is not None else value.symbol):
                await self.on_report(value)

    async def on_signal(self, signal: Any) -> None:
        if self.equity is None:
            log.warning("signal not traded: the broker's account equity is unknown", symbol=signal.symbol)
            return
        order = self.book.order_for_signal(signal, self.equity, self.config, now_ns=time.time_ns())
        if order is None:
            return
        if self.trading_blocked:
            log.warning("signal not traded: reconciliation has blocked new orders", symbol=signal.symbol)
            return
        await self.place(order, from_proto(signal.reference_price) or Decimal(0), cause=signal)

    async def place(
        self, order: oms_pb2.Order, price: Decimal, cause: Any
    ) -> tuple[oms_pb2.Order, risk_pb2.RiskDecision | None]:
        """An INITIALIZED order through risk: DENIED, or SUBMITTED with its command, all in the open transaction."""
        cid = order.client_order_id
        # INITIALIZED goes out while risk decides (its ack is awaited before anything depends on it): one ack wait
        # less on the order path. It is in the same transaction as what follows, so a crash leaves none of it.
        initialized = asyncio.create_task(self.emit(S.ORDER_EVENT_TYPE_INITIALIZED, order, cause=cause))
        request = check_request(order, price, dry_run=self.shadow)  # the shadow colour: no live duplicate checks
        request.envelope.CopyFrom(new_envelope("order-management", cause=cause))
        try:
            decision = await self.risk.CheckOrder(request)
        except grpc.aio.AioRpcError as error:  # fail closed: no answer is a no
            await initialized
            denied = self.book.transition(cid, S.ORDER_STATUS_DENIED)
            denied.reason = f"risk unavailable: {error.code().name}"
            await self.emit(S.ORDER_EVENT_TYPE_DENIED, denied, cause=cause, reason=denied.reason)
            return denied, None
        except BaseException:
            await asyncio.gather(initialized, return_exceptions=True)  # not left sending while the transaction aborts
            raise
        await initialized
        if not decision.approved:
            denied = self.book.transition(cid, S.ORDER_STATUS_DENIED)
            denied.reason = f"{risk_pb2.ReasonCode.Name(decision.reason_code)}: {decision.reason}"
            denied.lineage.risk_decision_id = decision.envelope.message_id
            await self.emit(S.ORDER_EVENT_TYPE_DENIED, denied, cause=cause, reason=denied.reason)
            return denied, decision
        submitted = self.book.transition(cid, S.ORDER_STATUS_SUBMITTED)
        submitted.lineage.risk_decision_id = decision.envelope.message_id
        # The event and the command in the same transaction: they are committed together or not at all. Both are
        # waited for even when one fails, so nothing is sent or applied after the transaction has begun to abort.
        for outcome in await asyncio.gather(
            self.emit(S.ORDER_EVENT_TYPE_SUBMITTED, submitted, cause=cause),
            self.send_command(submitted, cause, arrival_price=price),
            return_exceptions=True,
        ):
            if isinstance(outcome, BaseException):
                raise outcome
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
                trail_price=order.trail_price,
                trail_percent=order.trail_percent,
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
        await self.record(event)
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
        await self.record(event)

    async def record(self, event: oms_pb2.OrderEvent) -> None:
        """The one way the book changes while running: the event is sent (acked, not yet committed) and then
        applied; if the transaction aborts, the book is rebuilt from the log. Its offset is what a snapshot covers."""
        partition, offset = await self.publisher.publish("oms.events.v1", event, key=event.client_order_id)
        self.book.apply(event)
        self.event_offsets[partition] = max(self.event_offsets.get(partition, 0), offset + 1)

    # -- gRPC --------------------------------------------------------------------------------------------------
    def not_writing(self) -> str | None:
        """Why a gRPC write cannot be taken now (None: it can)."""
        if self.halted is not None:
            return f"order-management has stopped writing: {self.halted}"
        if self.recovering:
            return "order-management is rebuilding its book from the log after an aborted transaction"
        return None

    async def SubmitOrder(self, request: oms_pb2.SubmitOrderRequest, context: Any) -> oms_pb2.SubmitOrderResponse:
        quantity = from_proto(request.quantity) or Decimal(0)
        if not request.symbol or quantity <= 0 or request.side == common_pb2.ORDER_SIDE_UNSPECIFIED:
            return oms_pb2.SubmitOrderResponse(
                accepted=False, reason_code="INVALID_ORDER", reason="symbol, side and a positive quantity are required"
            )
        terms = OrderTerms.of(request)
        if (problem := terms.problem()) is not None:
            return oms_pb2.SubmitOrderResponse(accepted=False, reason_code="INVALID_ORDER", reason=problem)
        if (refusal := self.not_writing()) is not None:
            return oms_pb2.SubmitOrderResponse(accepted=False, reason_code="UNAVAILABLE", reason=refusal)
        # The order is written by the writer task (write_orders), which a caller that gives up does not cancel:
        # cancelled half way (a gRPC deadline cancels the handler), its transaction would abort after its INITIALIZED
        # or SUBMITTED had changed the book, leaving an order open of record that the log and the broker never had.
        # A caller that gave up before the order's turn came has it dropped unwritten; once its writing has begun,
        # it ends (denied, or submitted with its command).
        if len(self.order_writes) >= self.config.max_queued_orders:  # shed load: bounded memory, a quick answer
            return oms_pb2.SubmitOrderResponse(
                accepted=False,
                reason_code="BUSY",
                reason=f"{len(self.order_writes)} orders are waiting to be written (OMS__MAX_QUEUED_ORDERS="
                f"{self.config.max_queued_orders}); nothing was written, try again",
            )
        queued = QueuedOrder(request, quantity, terms)
        self.order_writes.add(queued.answer)
        queued.answer.add_done_callback(self.order_writes.discard)
        self.orders_waiting.append(queued)
        self.order_arrived.set()
        try:
            return await asyncio.shield(queued.answer)
        except asyncio.CancelledError:
            queued.abandoned = True
            raise

    async def write_orders(self) -> None:
        """The manual orders' writer: it takes the orders waiting (at most OMS__MAX_ORDERS_PER_TRANSACTION) and
        writes them in one transaction, side by side (each under its symbol's lock, so one symbol's orders keep
        their order), then answers their callers once it has committed. One commit for many orders, not one each:
        a commit's round trips, not risk, bound how many orders a second go through. A batch that aborts is NOT_WRITTEN
        for every order in it, and the book is rebuilt."""
        try:
            while True:
                await self.order_arrived.wait()
                batch = self.orders_waiting[: self.config.max_orders_per_transaction]
                del self.orders_waiting[: len(batch)]
                if not self.orders_waiting:
                    self.order_arrived.clear()
                batch = [queued for queued in batch if not queued.answered_unwritten()]
                if batch:
                    answers = await self.write_batch(batch)
                    for queued, answer in zip(batch, answers, strict=True):
                        if not queued.answer.done():
                            queued.answer.set_result(answer)
        finally:  # stopping: what never had its turn is answered, unwritten
            stopped = oms_pb2.SubmitOrderResponse(
                accepted=False, reason_code="UNAVAILABLE", reason="order-management is stopping; nothing was written"
            )
            for queued in self.orders_waiting:
                if not queued.answer.done():
                    queued.answer.set_result(stopped)

    async def write_batch(self, batch: list[QueuedOrder]) -> list[oms_pb2.SubmitOrderResponse]:
        if (refusal := self.not_writing()) is not None:
            return [oms_pb2.SubmitOrderResponse(accepted=False, reason_code="UNAVAILABLE", reason=refusal)] * len(batch)
        async with self.grpc_writes.track():
            try:
                async with self.publisher.transaction():  # taking turns with the consumer's transactions
                    outcomes = await asyncio.gather(
                        *(self.write_order(queued) for queued in batch), return_exceptions=True
                    )
                    # Every order's writing has ended before the transaction commits or begins to abort.
                    for outcome in outcomes:
                        if isinstance(outcome, BaseException):
                            raise outcome
            except Exception as error:  # aborted: nothing of these orders is in the log, but the book saw them
                self.transaction_failed(error, "SubmitOrder")
                not_written = oms_pb2.SubmitOrderResponse(
                    accepted=False,
                    reason_code="NOT_WRITTEN",
                    reason=f"the order was not written ({type(error).__name__}: {error}); nothing was sent",
                )
                return [not_written] * len(batch)
        ORDERS_PER_TRANSACTION.observe(len(batch))
        return [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]

    async def write_order(self, queued: QueuedOrder) -> oms_pb2.SubmitOrderResponse:
        """A manual order inside its batch's open transaction: DUPLICATE, RECONCILIATION_BLOCKED, ABANDONED (its
        caller gave up before its turn: nothing written), or placed (risk's answer)."""
        request, quantity, terms = queued.request, queued.quantity, queued.terms
        decision_id = request.decision_id or new_message_id()
        strategy = request.strategy_id or "manual"
        cid = derive_client_order_id(strategy, decision_id, request.symbol)
        async with self.locks.symbol(request.symbol):
            if queued.abandoned:
                return ABANDONED
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
            position = self.book.positions.get(request.symbol)
            price = (
                terms.limit_price
                or terms.stop_price
                or (position.market_price if position is not None else None)
                or Decimal(0)
            )
            signed = quantity if request.side == common_pb2.ORDER_SIDE_BUY else -quantity
            lineage = oms_pb2.OrderLineage(
                signal_id=decision_id, strategy_id=strategy, submitted_by=queued.submitted_by
            )
            placing = new_order(cid, request.symbol, signed, lineage, terms, now_ns=time.time_ns())
            order, decision = await self.place(placing, price, cause=None)
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
        if (refusal := self.not_writing()) is not None:
            return oms_pb2.CancelOrderResponse(accepted=False, reason=refusal)
        async with self.grpc_writes.track():
            known = self.book.orders.get(request.client_order_id)
            try:
                async with (
                    self.publisher.transaction(),
                    self.locks.symbol(known.symbol if known is not None else request.client_order_id),
                ):
                    order = self.book.orders.get(request.client_order_id)
                    if order is None or order.status not in OPEN:
                        return oms_pb2.CancelOrderResponse(accepted=False, reason="no open order with that id")
                    caller = current_identity()  # the verified caller, never a field of the request
                    command = oms_pb2.OrderCommand(
                        envelope=new_envelope("order-management"),
                        cancel_order=oms_pb2.CancelOrder(
                            client_order_id=request.client_order_id,
                            reason=request.reason or "operator",
                            requested_by=caller.actor if caller else "",
                        ),
                    )
                    await self.publisher.publish("oms.commands.v1", command, key=request.client_order_id)
            except Exception as error:  # the book is unchanged by a cancel: only a fenced producer matters here
                if is_fenced(error):
                    self.halt("fenced while sending a cancel", error)
                log.warning("cancel not sent", client_order_id=request.client_order_id, error=str(error))
                return oms_pb2.CancelOrderResponse(
                    accepted=False, reason=f"the cancel was not written ({type(error).__name__}); try again"
                )
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
    # No live lease: two live instances cannot both write, since the newer one's transactional id fences the older.
    app = OmsApp(settings, on_halt=_stop_the_process)
    return ServiceParts(
        components=[app],
        servicers=[Servicer(oms_pb2_grpc.add_OrderServiceServicer_to_server, app, "trading.oms.v1.OrderService")],
        ready_info={"transactional_id": app.transactional_id},
    )
