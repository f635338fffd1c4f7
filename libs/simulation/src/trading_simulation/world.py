"""One seeded run: the services, the bus, the broker, and the scheduler that decides everything that can vary.

Every choice (which record is delivered next, which trade update, when the market moves, when time jumps, which
component crashes and when it comes back, which broker call fails and how) comes from one `random.Random(seed)`, on a
single-threaded virtual-time loop: the same seed gives the same run, step for step. A run has an active phase with
faults, then a quiet phase without them (every component up, every record and update delivered, the market moving
until the broker has no open order), and then the checker looks at what happened (`trading_simulation.checks`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import grpc
import structlog
from execution_service.app import ExecutionApp
from execution_service.config import ExecutionSettings
from google.protobuf.message import Message
from oms_service.app import OmsApp
from oms_service.config import OmsSettings
from oms_service.engine import OrderBook
from paper_exchange.engine import Exchange, ExchangeConfig
from risk_service.app import RiskApp
from risk_service.config import RiskSettings
from trading.marketdata.v1 import marketdata_pb2
from trading.signal.v1 import signal_pb2
from trading_platform import ids
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope

from trading_simulation.broker import BrokerRecord, SimTradingStream
from trading_simulation.bus import Bus, SimConsumer, SimPublisher
from trading_simulation.loop import VirtualTimeLoop
from trading_simulation.wiring import rpc_error, wired

SYMBOLS = ("AAPL", "MSFT")
SUBMIT_FAULTS = ("broker_5xx", "broker_429", "timeout_before", "timeout_after", "lost_response")
LOOKUP_FAULTS = ("broker_5xx", "timeout_before")
FAULT_KIND = {
    "broker_5xx": "broker_5xx",
    "broker_429": "broker_429",
    "timeout_before": "broker_timeout",
    "timeout_after": "broker_timeout",
    "lost_response": "lost_response",
}
_CURRENT: list[World] = []
_DAILY: dict[str, Any] = {}
_BARS: dict[Any, Any] = {}


def current_world() -> World:
    if not _CURRENT:
        raise RuntimeError("no simulation is running: the simulated bus and broker exist only inside World.run()")
    return _CURRENT[-1]


@dataclass(frozen=True)
class SimConfig:
    steps: int = 70
    max_signals: int = 6
    quiet_rounds: int = 120
    p_crash: float = 0.025
    p_restart: float = 0.25
    p_broker_fault: float = 0.2
    p_rpc_fault: float = 0.12
    p_send_lost: float = 0.05
    p_commit_fails: float = 0.02
    p_stream_drop: float = 0.02
    p_rebalance: float = 0.03
    p_reorder: float = 0.15
    p_duplicate: float = 0.1


@dataclass
class Variant:
    """Which class each component is built from: the real ones, or a deliberately broken one (the checker's tests)."""

    name: str = "real"
    oms: type[OmsApp] = OmsApp
    risk: type[RiskApp] = RiskApp
    execution: type[ExecutionApp] = ExecutionApp
    book: type[OrderBook] = OrderBook


@dataclass
class Component:
    name: str
    build: Callable[[], Any]
    generation: int = 0
    app: Any = None
    incarnation: str = ""
    up: bool = False
    ready: bool = False  # its start() has returned
    task: asyncio.Task[Any] | None = None


@dataclass
class RunResult:
    seed: int
    violations: list[str]
    faults: dict[str, int]
    steps: int
    trace: list[str] = field(default_factory=list)
    quiet: bool = True
    orders: int = 0
    fills: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations


class World:
    def __init__(self, seed: int, config: SimConfig | None = None, variant: Variant | None = None) -> None:
        self.seed = seed
        self.config = config or SimConfig()
        self.variant = variant or Variant()
        self.rng = random.Random(seed)
        self.loop = VirtualTimeLoop()
        self.bus = Bus()
        self.redis: dict[str, dict[str, Any]] = {}
        self.broker = BrokerRecord()
        self.exchange = _exchange()
        self.exchange.listeners.append(self._on_trade_update)
        self.consumers: list[SimConsumer] = []
        self.streams: list[SimTradingStream] = []
        self.live: set[str] = set()
        self.transactional: dict[str, SimPublisher] = {}
        self.faults: Counter[str] = Counter()
        self.trace: list[str] = []
        self.errors: list[str] = []
        self.crash_checks: list[str] = []  # violations found at a crash (the rebuild check)
        self.step = 0
        self.faulty = True
        self.signals = 0
        self.halts: list[str] = []
        self.risk_deadline_s = 0.5
        self.components = {
            "risk": Component("risk", self._build_risk),
            "execution": Component("execution", self._build_execution),
            "order-management": Component("order-management", self._build_oms),
        }

    # -- what the doubles ask --------------------------------------------------------------------------------------
    def alive(self, incarnation: str | None) -> bool:
        return incarnation is None or incarnation in self.live

    def note(self, text: str) -> None:
        self.trace.append(f"{self.step:4d} {self.loop.time():8.3f}s {text}")

    def fault(self, kind: str, text: str) -> None:
        self.faults[kind] += 1
        self.note(f"FAULT {kind}: {text}")

    def note_published(self, producer: str, topic: str, key: str, message: Message) -> None:
        self.note(f"{producer} -> {topic} [{key}] {_describe(message)}")

    def fence(self, transactional_id: str, publisher: SimPublisher) -> None:
        previous = self.transactional.get(transactional_id)
        if previous is not None and previous is not publisher:
            previous.fenced = True
            previous.abort_open()
        self.transactional[transactional_id] = publisher

    def lose_send(self, topic: str) -> bool:
        if self.faulty and topic == "risk.decisions.v1" and self.rng.random() < self.config.p_send_lost:
            self.fault("decision_lost", "risk's decision never reached the bus")
            return True
        return False

    def broker_fault(self, call: str) -> str | None:
        if not self.faulty or self.rng.random() >= self.config.p_broker_fault:
            return None
        kind = self.rng.choice(SUBMIT_FAULTS if call == "submit" else LOOKUP_FAULTS)
        self.fault(FAULT_KIND[kind], f"broker {call}: {kind}")
        return kind

    async def rpc(
        self, callee: str, call: Callable[[Any], Awaitable[Any]], deadline: float, faults: bool = True
    ) -> Any:
        component = self.components[callee]
        if not component.up:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"{callee} is down")
        fault = None
        if faults and self.faulty and self.rng.random() < self.config.p_rpc_fault:
            fault = self.rng.choice(("request_lost", "response_lost", "delayed"))
            self.fault("rpc_lost" if fault != "delayed" else "rpc_delayed", f"{callee}: {fault}")
        if fault == "request_lost":
            await asyncio.sleep(deadline)
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded (request lost)")
        delay = self.rng.uniform(0.2, 1.2) * deadline if fault == "delayed" else 0.0
        if delay:
            await asyncio.sleep(min(delay, deadline))
            if delay >= deadline:
                raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded (delayed)")
        task = self.loop.spawn(component.incarnation, call(component.app))
        done, _ = await asyncio.wait({task}, timeout=deadline - delay)
        if not done:
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
        if task.cancelled():
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"{callee} went down during the call")
        if task.exception() is not None:
            raise rpc_error(grpc.StatusCode.UNKNOWN, f"{callee}: {task.exception()!r}")
        if fault == "response_lost":
            await asyncio.sleep(deadline - delay)
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded (response lost)")
        return task.result()

    def _on_trade_update(self, message: dict[str, Any]) -> None:
        data = message["data"]
        order = data["order"]
        self.note(f"broker update {data['event']} {order['client_order_id']} filled={order['filled_qty']}")
        execution = self.components["execution"]
        for stream in self.streams:
            if stream.incarnation == execution.incarnation:
                stream.offer(message)

    # -- components ------------------------------------------------------------------------------------------------
    def _build_risk(self) -> RiskApp:
        return self.variant.risk(_settings("risk"))

    def _build_execution(self) -> ExecutionApp:
        return self.variant.execution(_settings("execution"))

    def _build_oms(self) -> OmsApp:
        settings = _settings("order-management")
        self.risk_deadline_s = settings.oms.risk_timeout_s
        return self.variant.oms(settings, on_halt=self._oms_halted)

    def _oms_halted(self, reason: str) -> None:
        self.halts.append(reason)
        self.note(f"order-management halts: {reason}")
        self.loop.call_soon(self.crash, "order-management", f"halted: {reason}")

    def start(self, name: str) -> None:
        component = self.components[name]
        if component.up:
            return
        component.generation += 1
        component.incarnation = f"{name}#{component.generation}"
        self.live.add(component.incarnation)
        component.up = True
        import contextvars

        from trading_simulation.loop import INCARNATION

        context = contextvars.copy_context()
        context.run(INCARNATION.set, component.incarnation)
        component.app = context.run(component.build)
        self.note(f"START {component.incarnation}")
        component.task = self.loop.spawn(component.incarnation, self._starting(component))

    async def _starting(self, component: Component) -> None:
        try:
            await component.app.start()
            component.ready = True
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.note(f"{component.incarnation} failed to start: {type(error).__name__}: {error}")
            self.loop.call_soon(self.crash, component.name, "failed start")

    def crash(self, name: str, why: str = "injected") -> None:
        component = self.components[name]
        if not component.up:
            return
        if name == "order-management" and component.ready:
            self._check_rebuild_at_crash(component.app)
        component.up = component.ready = False
        self.live.discard(component.incarnation)
        for stream in self.streams:
            if stream.incarnation == component.incarnation:
                stream.drop()
        self.streams = [s for s in self.streams if s.incarnation != component.incarnation]
        self.consumers = [c for c in self.consumers if c.incarnation != component.incarnation]
        cancelled = self.loop.kill(component.incarnation)
        self.faults["crash"] += 1 if why == "injected" else 0
        self.note(f"CRASH {component.incarnation} ({why}; {cancelled} tasks killed)")
        component.app = None

    def _check_rebuild_at_crash(self, app: OmsApp) -> None:
        from trading_simulation.checks import compare_books, folded_book

        publisher = app.publisher
        if getattr(publisher, "_open", None) is not None or app.recovering or app.halted:
            return  # effects of an unfinished transaction are meant to be lost
        if app.recovery is not None and not app.recovery.done():
            return
        difference = compare_books(app.book, folded_book(self.bus))
        if difference:
            self.crash_checks.append(f"rebuild: at a crash, the book rebuilt from the log differs: {difference}")

    # -- the world's own inputs --------------------------------------------------------------------------------------
    def publish_bars(self) -> None:
        for symbol in SYMBOLS:
            bar = self.exchange.bar(symbol)
            message = marketdata_pb2.Bar(
                envelope=new_envelope("market-data"),
                symbol=symbol,
                interval_seconds=60,
                open=bar["o"],
                high=bar["h"],
                low=bar["l"],
                close=bar["c"],
                volume=bar["v"],
                generated=True,
            )
            self.bus.append("marketdata.bars.v1", symbol, message, "committed")

    def publish_signal(self) -> None:
        symbol = self.rng.choice(SYMBOLS)
        weight = round(self.rng.uniform(-0.4, 0.4), 2)
        price = Decimal(repr(self.exchange.bar(symbol)["c"]))
        message = signal_pb2.SignalGenerated(
            envelope=new_envelope("signal"),
            symbol=symbol,
            strategy_id="sim",
            target_weight=weight,
            reference_price=to_proto(price),
            model_name="sim",
            model_version="sim@1",
        )
        self.bus.append("signal.signals.v1", symbol, message, "committed")
        self.signals += 1
        self.note(f"signal {symbol} target {weight} at {price}")

    # -- the scheduler -----------------------------------------------------------------------------------------------
    async def settle(self) -> None:
        """Run everything that can run now, without moving the clock."""
        for _ in range(10_000):
            await asyncio.sleep(0)
            if not self.loop.busy():
                return

    def _deliver(self, everything: bool = False) -> bool:
        choices = [(c, tp) for c in self.consumers for tp in c.deliverable()]
        if not choices:
            return False
        if everything:
            for consumer, (topic, partition) in choices:
                consumer.hand(topic, partition, 1_000)
            return True
        consumer, (topic, partition) = self.rng.choice(choices)
        consumer.hand(topic, partition, self.rng.choice((1, 1, 1, 2, 3)))
        return True

    def _deliver_update(self, faulty: bool) -> bool:
        streams = [s for s in self.streams if s.queue and s.handler is not None and self.alive(s.incarnation)]
        if not streams:
            return False
        stream = streams[0]
        index = 0
        if faulty and len(stream.queue) > 1 and self.rng.random() < self.config.p_reorder:
            index = self.rng.randrange(1, len(stream.queue))
            self.fault("update_reordered", f"trade update {index} of {len(stream.queue)} delivered first")
        update = stream.queue.pop(index)
        if faulty and self.rng.random() < self.config.p_duplicate:
            stream.queue.insert(self.rng.randrange(0, len(stream.queue) + 1), update)
            self.fault("update_duplicated", f"trade update {update['data']['event']} delivered twice")
        self.loop.spawn(stream.incarnation, stream.handler(update))
        return True

    def _market(self) -> None:
        self.exchange.advance(1)
        self.publish_bars()

    async def active_step(self) -> None:
        rng, config = self.rng, self.config
        for name, component in self.components.items():
            if not component.up and rng.random() < config.p_restart:
                self.start(name)
        if rng.random() < config.p_crash:
            up = [n for n, c in self.components.items() if c.up]
            if up:
                self.crash(rng.choice(up))
        if rng.random() < config.p_stream_drop:
            for stream in self.streams:
                if stream.connected:
                    self.fault("stream_dropped", f"{stream.incarnation}'s trade-update stream")
                    stream.drop()
        if rng.random() < config.p_rebalance and self.consumers:
            consumer = rng.choice(self.consumers)
            self.fault("redelivery", f"{consumer.group_id} rebalanced: redelivered from its committed offsets")
            consumer.rebalance()
        action = rng.choices(("signal", "deliver", "update", "market", "commit", "wait"), weights=(1.2, 6, 3, 1, 1, 1))[
            0
        ]
        if action == "signal" and self.signals < config.max_signals:
            self.publish_signal()
        elif action == "deliver":
            self._deliver()
        elif action == "update":
            self._deliver_update(faulty=True)
        elif action == "market":
            self._market()
        elif action == "commit":
            for consumer in self.consumers:
                consumer.commit()
        elif action == "wait":
            wait = rng.uniform(0.5, 3.0)
            self.fault("delay", f"everything waits {wait:.2f}s")
            await asyncio.sleep(wait)
        await self.settle()
        await asyncio.sleep(rng.uniform(0.0, 0.25))
        await self.settle()

    def _pending(self) -> bool:
        return (
            any(c.deliverable() or c.inbox or c.in_flight for c in self.consumers)
            or any(s.queue for s in self.streams)
            or any(o.is_open for o in self.exchange.orders.values())
        )

    async def quiet_phase(self) -> bool:
        """No more faults: everything comes back, everything is delivered; True once nothing moves any more."""
        self.faulty = False
        self.note("QUIET: no more faults")
        calm = 0
        for _ in range(self.config.quiet_rounds):
            for name, component in self.components.items():
                if not component.up:
                    self.start(name)
            await self.settle()
            moved = self._deliver(everything=True)
            while self._deliver_update(faulty=False):
                moved = True
                await self.settle()
            for consumer in self.consumers:
                consumer.commit()
            if any(o.is_open for o in self.exchange.orders.values()):
                self._market()
                moved = True
            await self.settle()
            await asyncio.sleep(0.5)
            await self.settle()
            connected = all(s.connected for s in self.streams)
            calm = calm + 1 if not moved and not self._pending() and connected else 0
            if calm >= 6:  # longer than the approval wait, a reconnect and a reconciliation: nothing is on its way
                return True
        return False

    async def main(self) -> bool:
        self.exchange.advance(1)
        self.publish_bars()
        for name in ("risk", "execution", "order-management"):
            self.start(name)
            await self.settle()
        await asyncio.sleep(0.5)
        for step in range(1, self.config.steps + 1):
            self.step = step
            await self.active_step()
        return await self.quiet_phase()

    def run(self, verbose: bool = False) -> RunResult:
        from trading_simulation.checks import check

        _CURRENT.append(self)
        random_state, id_source = uuid.uuid4, ids.message_id_source
        uuid.uuid4 = lambda: uuid.UUID(int=self.rng.getrandbits(128), version=4)  # type: ignore[assignment]
        ids.message_id_source = lambda: str(uuid.uuid4())  # message ids from the seed too
        self.loop.set_exception_handler(self._loop_error)
        _quiet_logs(self if verbose else None)
        try:
            with wired(self):
                quiet = self.loop.run_until_complete(self.main())
                violations = check(self, quiet)
        finally:
            uuid.uuid4 = random_state  # type: ignore[assignment]
            ids.message_id_source = id_source
            _BARS.update(self.exchange._bars_cache)
            _CURRENT.pop()
            self._close()
        return RunResult(
            self.seed,
            violations,
            dict(self.faults),
            self.step,
            self.trace,
            quiet,
            orders=len(self.exchange.orders),
            fills=len(self.exchange.fills),
        )

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        self.errors.append(f"{context.get('message')}: {error!r}")
        self.note(f"unhandled: {context.get('message')}: {error!r}")

    def _close(self) -> None:
        for incarnation in list(self.loop.tasks_of):
            self.loop.kill(incarnation)
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()


def _describe(message: Message) -> str:
    kind = message.DESCRIPTOR.name
    if kind == "OrderEvent":
        from trading.oms.v1 import oms_pb2

        event: Any = message
        return f"{oms_pb2.OrderEventType.Name(event.event_type)} {event.reason}".strip()
    if kind == "RiskDecision":
        decision: Any = message
        return f"RiskDecision approved={decision.approved} {decision.quantity.value} {decision.reason}"
    if kind == "ExecutionReport":
        report: Any = message
        return f"ExecutionReport type={report.report_type} filled={report.filled_quantity.value} {report.reason}"
    if kind == "OrderCommand":
        command: Any = message
        return f"OrderCommand {command.WhichOneof('command')}"
    return kind


_SETTINGS: dict[str, Any] = {}


def _settings(name: str) -> Any:
    """Each service's settings, made once per process (reading them from the environment costs 20 ms a time)."""
    if name not in _SETTINGS:
        kafka = {"bootstrap_servers": "simulated:0"}
        if name == "risk":
            _SETTINGS[name] = RiskSettings(kafka=kafka)
        elif name == "execution":
            broker = {"api_key_id": "simulated", "api_secret_key": "simulated"}
            _SETTINGS[name] = ExecutionSettings(kafka=kafka, broker=broker)
        else:
            oms = {"snapshot_every_events": 6, "snapshot_check_s": 1.0, "reconcile_interval_s": 5.0}
            _SETTINGS[name] = OmsSettings(kafka=kafka, oms=oms)
    return _SETTINGS[name]


def _exchange() -> Exchange:
    config = ExchangeConfig(symbols=SYMBOLS, start_date="2010-01-04", end_date="2010-01-08")
    if not _DAILY:
        _DAILY.update(Exchange(config).daily)
    exchange = Exchange(config, daily=dict(_DAILY))
    exchange._bars_cache = dict(_BARS)  # the generated minute bars are the same in every run: made once per process
    return exchange


def _quiet_logs(world: World | None) -> None:
    """The services' structlog lines go into the trace (verbose) or nowhere."""

    def to_trace(_: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        if world is not None:
            text = " ".join(f"{k}={v}" for k, v in event.items() if k != "event")
            world.note(f"log {method} {event.get('event')} {text}")
        raise structlog.DropEvent

    structlog.configure(
        processors=[to_trace],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if world is not None else logging.CRITICAL),
        cache_logger_on_first_use=False,
    )
    logging.getLogger().setLevel(logging.CRITICAL)
