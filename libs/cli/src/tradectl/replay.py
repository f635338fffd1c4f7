"""tradectl replay --from T1 --to T2: re-run the recorded inputs of a time window through the signal, order-management
and risk engines, in process, and report every decision that differs from the recorded run (0 expected).

What is read (committed records, by their Kafka timestamps): the bars of the window and of `--warmup` before it (the
features' window), the recorded signals (the policy's position before the window, and the signals to compare),
order-management's event log up to the window (the book) and after (its decisions), the execution reports of the
window (fills), the positions, risk decisions, trading state and start-of-day equity of record (risk's book). What
runs: the signal service's SignalEngine with the configured policy (the registry's production version, or
`--model-version`), order-management's OrderBook (its sizing and state machine) and risk's RiskEngine, with the
limits configured now. Configuration is read as the services read it (TRADING_SIGNAL__*, TRADING_OMS__*,
TRADING_RISK__*), so a changed model or limit shows as the decisions it changes.

Compared decisions: per bar, the signal (target weight, model, feature hash); per signal, the order it led to (side,
quantity, status); per order, risk's verdict (approved, reason code). Nothing is published to a live topic: with
`--publish`, the replayed signals, order events and risk decisions go to topics of an isolated namespace
(`replay-<time>.`), for `tradectl tail --namespace`.

Sizing equity: order-management sizes with the broker account's equity, which is not on the bus; the replay uses
risk's view of it (the recorded start-of-day equity plus the book's P&L since), or `--equity`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from trading_platform.messaging import ConsumedMessage, KafkaConnection, Publisher, ensure_topics, replay
from trading_platform.messaging.connection import BrokerUnavailableError

from tradectl.topics import bootstrap_option, resolve_connection

console = Console(stderr=True, soft_wrap=True)
MS = 1_000_000  # ns per ms
DECISION_GRACE_MS = 60_000  # decisions caused by the window's last inputs may be recorded a little after it
WEIGHT_TOLERANCE = 1e-9
OUTPUT_TOPICS = ["signal.signals.v1", "oms.events.v1", "risk.decisions.v1"]


@dataclass(frozen=True)
class Difference:
    engine: str  # signal | order-management | risk
    key: str  # the bar id, signal id or client order id the decision belongs to
    field: str
    recorded: Any
    replayed: Any


@dataclass
class Report:
    window: dict[str, str]
    model: str
    limits_version: str
    inputs: dict[str, int]
    compared: dict[str, int]
    differences: list[Difference] = field(default_factory=list)
    namespace: str | None = None  # where --publish wrote the replayed decisions


# --- time arguments -----------------------------------------------------------------------------------------
RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, option: str, now_ms: int | None = None) -> int:
    """UNIX ms from an ISO 8601 time (UTC unless it names a zone), UNIX ms, `now`, or `-15m` / `-2h` / `-1d`."""
    now_ms = now_ms if now_ms is not None else time.time_ns() // MS
    text = text.strip()
    if text == "now":
        return now_ms
    if (match := RELATIVE.match(text)) is not None:
        return now_ms - int(float(match.group(1)) * UNITS_S[match.group(2)] * 1000)
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a time: give ISO 8601 (2026-12-02T14:30:00Z), UNIX ms, now, or -15m/-2h/-1d",
            param_hint=option,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_duration_s(text: str, option: str) -> float:
    match = RELATIVE.match("-" + text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r}: give a duration such as 30m, 2h or 90s", param_hint=option)
    return float(match.group(1)) * UNITS_S[match.group(2)]


# --- the record ---------------------------------------------------------------------------------------------
@dataclass
class Record:
    bars: list[ConsumedMessage]
    signals: list[ConsumedMessage]
    events: list[ConsumedMessage]
    reports: list[ConsumedMessage]
    positions: list[ConsumedMessage]
    decisions: list[ConsumedMessage]
    states: list[ConsumedMessage]
    equity: list[ConsumedMessage]


async def read_record(
    connection: KafkaConnection, namespace: str, start_ms: int, end_ms: int, warmup_ms: int
) -> Record:
    async def read(topic: str, since_ms: int | None, until_ms: int) -> list[ConsumedMessage]:
        messages = [
            m
            async for m in replay(connection, topic, namespace=namespace, since_ms=since_ms, start_timeout_s=10)
            if m.timestamp_ms <= until_ms
        ]
        return sorted(messages, key=lambda m: (m.timestamp_ms, m.partition, m.offset))

    until = end_ms + DECISION_GRACE_MS
    day_ms = 24 * 3600 * 1000
    return Record(
        bars=await read("marketdata.bars.v1", start_ms - warmup_ms, end_ms),
        signals=await read("signal.signals.v1", start_ms - warmup_ms, until),
        events=await read("oms.events.v1", None, until),  # the book is a fold of the whole log
        reports=await read("execution.reports.v1", start_ms, end_ms),
        positions=await read("oms.positions.v1", None, start_ms),
        decisions=await read("risk.decisions.v1", start_ms - day_ms, until),
        states=await read("risk.state.v1", None, start_ms),
        equity=await read("risk.equity.v1", None, end_ms),
    )


# --- the engines --------------------------------------------------------------------------------------------
class Replayer:
    """The three engines, fed as their services feed them, one input at a time in record order."""

    def __init__(self, settings: dict[str, Any], policy: Any, equity: Decimal | None) -> None:
        from oms_service.engine import OrderBook
        from risk_service.engine import RiskEngine
        from signal_service.engine import SignalEngine
        from trading_platform.clock import SimulatedClock

        self.signal_config, self.oms_config, self.risk_config = settings["signal"], settings["oms"], settings["risk"]
        self.policy = policy
        self.fixed_equity = equity
        self.signals = SignalEngine(self.signal_config.strategy_id)
        self.book = OrderBook()
        self.clock = SimulatedClock()
        self.risk = RiskEngine(self.risk_config, self.clock)
        self.outputs: list[tuple[str, Any, str]] = []  # (topic, message, key): for --publish

    def at(self, ms: int) -> None:
        self.clock.set(max(self.clock.now_ns(), ms * MS))

    def on_equity(self, message: ConsumedMessage) -> None:
        from risk_service.engine import DayEquity
        from trading_platform.decimals import from_proto

        value: Any = message.value
        equity = from_proto(value.equity, None)
        if equity is not None and value.trading_day == self.risk.trading_day(self.clock.now_ns()):
            self.risk.restore_day(DayEquity(value.trading_day, equity, from_proto(value.book_pnl) or Decimal(0)))

    def on_book_event(self, event: Any) -> None:
        from trading_platform.decimals import from_proto

        self.book.apply(event)
        order = event.order
        self.risk.on_order_event(
            event.client_order_id,
            order.status,
            from_proto(order.quantity) or Decimal(0),
            from_proto(order.filled_quantity) or Decimal(0),
        )
        if event.fill_id and order.symbol in self.book.positions:
            position = self.book.positions[order.symbol]
            self.risk.on_position(
                position.symbol, position.quantity, position.average_entry_price, position.realized_pnl
            )

    def on_report(self, report: Any) -> None:
        event = self.book.event_for_report(report)
        if event is not None:
            self.on_book_event(event)

    def warm_up(self, record: Record, start_ms: int) -> None:
        """The state of every engine when the window begins."""
        from trading_platform.decimals import from_proto

        for message in record.events:
            if message.timestamp_ms < start_ms:
                self.on_book_event(message.value)
        for message in record.positions:
            position: Any = message.value.position  # type: ignore[attr-defined]
            self.risk.on_position(
                position.symbol,
                from_proto(position.quantity) or Decimal(0),
                from_proto(position.average_entry_price) or Decimal(0),
                from_proto(position.realized_pnl) or Decimal(0),
            )
        for message in record.states:
            self.risk.set_state(message.value.state, message.value.reason)  # type: ignore[attr-defined]
        before = [
            *((m, "bar") for m in record.bars if m.timestamp_ms < start_ms),
            *((m, "signal") for m in record.signals if m.timestamp_ms < start_ms),
            *((m, "decision") for m in record.decisions if m.timestamp_ms < start_ms),
            *((m, "equity") for m in record.equity if m.timestamp_ms < start_ms),
        ]
        for message, kind in sorted(before, key=lambda item: item[0].timestamp_ms):
            self.at(message.timestamp_ms)
            value: Any = message.value
            if kind == "bar":
                self.signals.on_bar(value)
                self.risk.on_price(value.symbol, Decimal(repr(value.close)))
            elif kind == "signal":  # the policy's position is what the recorded service last decided
                self.signals.positions["live"][value.symbol] = value.target_weight
            elif kind == "decision":
                self.risk.on_decision(value)
            else:
                self.on_equity(message)
        self.risk.mark_ready()

    async def on_bar(self, message: ConsumedMessage, recorded: ConsumedMessage | None) -> Any:
        """The signal for a bar (None while features warm up), then the order it leads to."""
        from trading_platform.envelope import new_envelope

        bar: Any = message.value
        self.at(message.timestamp_ms)
        self.risk.on_price(bar.symbol, Decimal(repr(bar.close)))
        vector = self.signals.on_bar(bar)
        if vector is None:
            return None
        policy = self.policy
        weight = await policy.predict(vector, self.signals.position("live", bar.symbol))
        signal = self.signals.signal(bar, vector, weight, policy.model_name, policy.model_version)
        signal.envelope.CopyFrom(new_envelope("signal", cause=bar))
        if recorded is not None:  # the same decision id as recorded, so the order it leads to has the same id
            signal.envelope.message_id = recorded.value.envelope.message_id  # type: ignore[attr-defined]
        self.outputs.append(("signal.signals.v1", signal, signal.symbol))
        return signal

    def on_signal(self, signal: Any, at_ms: int) -> tuple[str | None, dict[str, Any] | None, dict[str, Any] | None]:
        """order-management's decision for a signal and, if it placed an order, its client order id and risk's
        verdict on it."""
        from oms_service.engine import check_request
        from trading.oms.v1 import oms_pb2
        from trading.risk.v1 import risk_pb2
        from trading_platform.decimals import from_proto
        from trading_platform.envelope import new_envelope

        self.at(at_ms)
        price = from_proto(signal.reference_price) or Decimal(0)
        self.book.mark(signal.symbol, price)
        equity = self.fixed_equity
        if equity is None:
            try:
                equity = self.risk.equity()
            except RuntimeError:  # no start-of-day equity recorded: order-management would not size either
                return None, None, None
        order = self.book.order_for_signal(signal, equity, self.oms_config)  # the service's own step
        if order is None:
            return None, None, None
        cid, side = order.client_order_id, order.side
        self._event(oms_pb2.ORDER_EVENT_TYPE_INITIALIZED, order, signal)
        request = check_request(order, price)
        request.envelope.CopyFrom(new_envelope("order-management", cause=signal))
        verdict = self.risk.check(request)
        decision = risk_pb2.RiskDecision(
            envelope=new_envelope("risk", cause=request),
            client_order_id=cid,
            approved=verdict.approved,
            reason_code=verdict.reason_code,
            reason=verdict.reason,
            trading_state=self.risk.trading_state,
            limits_version=self.risk.limits.limits_version,
            symbol=signal.symbol,
            side=side,
            quantity=order.quantity,
        )
        self.outputs.append(("risk.decisions.v1", decision, cid))
        status = oms_pb2.ORDER_STATUS_SUBMITTED if verdict.approved else oms_pb2.ORDER_STATUS_DENIED
        moved = self.book.transition(cid, status)
        self._event(
            oms_pb2.ORDER_EVENT_TYPE_SUBMITTED if verdict.approved else oms_pb2.ORDER_EVENT_TYPE_DENIED, moved, signal
        )
        return cid, order_decision(order, status), risk_verdict(verdict.approved, verdict.reason_code)

    def _event(self, event_type: int, order: Any, cause: Any) -> None:
        from trading.oms.v1 import oms_pb2
        from trading_platform.envelope import new_envelope

        event = oms_pb2.OrderEvent(
            envelope=new_envelope("order-management", cause=cause),
            event_type=event_type,
            client_order_id=order.client_order_id,
            order=order,
        )
        self.on_book_event(event)
        self.outputs.append(("oms.events.v1", event, order.client_order_id))


def order_decision(order: Any, status: int) -> dict[str, Any]:
    from trading.common.v1 import common_pb2
    from trading.oms.v1 import oms_pb2
    from trading_platform.decimals import from_proto

    return {
        "side": common_pb2.OrderSide.Name(order.side),
        "quantity": str(from_proto(order.quantity)),
        "status": oms_pb2.OrderStatus.Name(status),
    }


def risk_verdict(approved: bool, reason_code: int) -> dict[str, Any]:
    from trading.risk.v1 import risk_pb2

    return {"approved": approved, "reason_code": risk_pb2.ReasonCode.Name(reason_code)}


def signal_decision(signal: Any) -> dict[str, Any]:
    return {
        "target_weight": signal.target_weight,
        "model_name": signal.model_name,
        "model_version": signal.model_version,
        "feature_hash": signal.feature_hash,
    }


@dataclass
class Recorded:
    """The recorded run's decisions: per signal id the order it led to (and its client order id), per client
    order id risk's verdict."""

    orders: dict[str, dict[str, Any]]
    order_ids: dict[str, str]
    verdicts: dict[str, dict[str, Any]]


def recorded_decisions(record: Record) -> Recorded:
    from trading.oms.v1 import oms_pb2

    orders: dict[str, dict[str, Any]] = {}
    initialized: dict[str, Any] = {}
    for message in record.events:
        event: Any = message.value
        signal_id = event.order.lineage.signal_id
        if not signal_id:
            continue
        if event.event_type == oms_pb2.ORDER_EVENT_TYPE_INITIALIZED:
            initialized[signal_id] = event.order
        elif event.event_type in (oms_pb2.ORDER_EVENT_TYPE_SUBMITTED, oms_pb2.ORDER_EVENT_TYPE_DENIED):
            if signal_id in initialized:
                orders[signal_id] = order_decision(initialized[signal_id], event.order.status)
    verdicts = {
        m.value.client_order_id: risk_verdict(m.value.approved, m.value.reason_code)  # type: ignore[attr-defined]
        for m in record.decisions
    }
    order_ids = {signal_id: order.client_order_id for signal_id, order in initialized.items()}
    return Recorded(orders, order_ids, verdicts)


def compare(
    engine: str, key: str, recorded: dict[str, Any] | None, replayed: dict[str, Any] | None
) -> list[Difference]:
    if recorded is None and replayed is None:
        return []
    if recorded is None or replayed is None:
        return [Difference(engine, key, "decision", recorded, replayed)]
    differences = []
    for name in recorded:
        a, b = recorded[name], replayed.get(name)
        same = abs(a - b) <= WEIGHT_TOLERANCE if isinstance(a, float) and isinstance(b, float) else a == b
        if not same:
            differences.append(Difference(engine, key, name, a, b))
    return differences


def manual_orders(record: Record, start_ms: int, end_ms: int) -> list[ConsumedMessage]:
    """The window's placement events of orders no recorded signal caused (an operator's, over gRPC): inputs, which
    the replayed book takes as recorded. An order's later events come from the execution reports it applies."""
    from trading.oms.v1 import oms_pb2

    placement = {
        oms_pb2.ORDER_EVENT_TYPE_INITIALIZED,
        oms_pb2.ORDER_EVENT_TYPE_DENIED,
        oms_pb2.ORDER_EVENT_TYPE_SUBMITTED,
    }
    signal_ids = {m.value.envelope.message_id for m in record.signals}  # type: ignore[attr-defined]
    manual = []
    for message in record.events:
        event: Any = message.value
        if (
            start_ms <= message.timestamp_ms <= end_ms
            and event.event_type in placement
            and event.order.lineage.signal_id not in signal_ids
        ):
            manual.append(message)
    return manual


async def run_replay(
    connection: KafkaConnection,
    namespace: str,
    start_ms: int,
    end_ms: int,
    settings: dict[str, Any],
    policy: Any,
    *,
    warmup_s: float,
    equity: Decimal | None,
    publish: bool,
) -> Report:
    record = await read_record(connection, namespace, start_ms, end_ms, int(warmup_s * 1000))
    replayer = Replayer(settings, policy, equity)
    replayer.warm_up(record, start_ms)
    recorded_signals = {m.value.bar_id: m for m in record.signals}  # type: ignore[attr-defined]
    decided = recorded_decisions(record)
    report = Report(
        window={"from": iso(start_ms), "to": iso(end_ms)},
        model=f"{policy.model_name} {policy.model_version}",
        limits_version=settings["risk"].limits_version,
        inputs={"bars": 0, "execution_reports": 0},
        compared={"signal": 0, "order-management": 0, "risk": 0},
    )
    window = [
        *((m, "bar") for m in record.bars if m.timestamp_ms >= start_ms),
        *((m, "report") for m in record.reports),
        *((m, "equity") for m in record.equity if m.timestamp_ms >= start_ms),
        *((m, "manual") for m in manual_orders(record, start_ms, end_ms)),
    ]
    order_of = {"equity": 0, "manual": 1, "report": 2, "bar": 3}
    for message, kind in sorted(window, key=lambda item: (item[0].timestamp_ms, order_of[item[1]], item[0].offset)):
        if kind == "equity":
            replayer.at(message.timestamp_ms)
            replayer.on_equity(message)
            continue
        if kind == "manual":
            replayer.at(message.timestamp_ms)
            replayer.on_book_event(message.value)
            continue
        if kind == "report":
            report.inputs["execution_reports"] += 1
            replayer.at(message.timestamp_ms)
            replayer.on_report(message.value)
            continue
        report.inputs["bars"] += 1
        bar_id = message.value.envelope.message_id  # type: ignore[attr-defined]
        recorded = recorded_signals.get(bar_id)
        signal = await replayer.on_bar(message, recorded)
        report.compared["signal"] += 1
        report.differences += compare(
            "signal",
            bar_id,
            signal_decision(recorded.value) if recorded is not None else None,
            signal_decision(signal) if signal is not None else None,
        )
        signal_id = recorded.value.envelope.message_id if recorded is not None else None  # type: ignore[attr-defined]
        cid, order, verdict = (None, None, None)
        if signal is not None:
            signal_id = signal.envelope.message_id
            at_ms = recorded.timestamp_ms if recorded is not None else message.timestamp_ms
            cid, order, verdict = replayer.on_signal(signal, at_ms)
        if signal_id is None:
            continue
        report.compared["order-management"] += 1
        report.differences += compare("order-management", signal_id, decided.orders.get(signal_id), order)
        recorded_cid = decided.order_ids.get(signal_id)
        if recorded_cid is not None or cid is not None:
            key = str(recorded_cid or cid)
            report.compared["risk"] += 1
            report.differences += compare("risk", key, decided.verdicts.get(key), verdict if cid == key else None)
    if publish:
        report.namespace = f"replay-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10_000:04d}."
        await publish_outputs(connection, report.namespace, replayer.outputs)
    return report


async def publish_outputs(connection: KafkaConnection, namespace: str, outputs: list[tuple[str, Any, str]]) -> None:
    await ensure_topics(connection, OUTPUT_TOPICS, namespace=namespace)
    async with Publisher(connection, "tradectl-replay", namespace=namespace) as publisher:
        for topic, message, key in outputs:
            await publisher.publish(topic, message, key=key)


# --- configuration ------------------------------------------------------------------------------------------
def load_configs(bootstrap: str) -> dict[str, Any]:
    """The signal, order-management and risk sections as each service reads them from its environment."""
    from oms_service.config import OmsSettings
    from risk_service.config import RiskSettings
    from signal_service.config import SignalSettings
    from trading_platform.settings import load_settings

    kafka = {"bootstrap_servers": bootstrap}
    return {
        "signal": load_settings(SignalSettings, kafka=kafka).signal,
        "oms": load_settings(OmsSettings, kafka=kafka).oms,
        "risk": load_settings(RiskSettings, kafka=kafka).risk,
    }


async def load_policy(config: Any, model_version: str | None) -> Any:
    """The policy the signal service would serve now (the registry's production version), or the given version."""
    from signal_service import serving
    from trading_policy import ModelRegistry

    if config.model_registry is None:
        if model_version is not None:
            raise typer.BadParameter(
                "no model registry is configured (TRADING_SIGNAL__MODEL_REGISTRY): the baseline has no versions",
                param_hint="--model-version",
            )
        return serving.baseline(config.max_weight)
    registry = ModelRegistry(config.model_registry)
    model = registry.get(config.model_name, model_version) if model_version else registry.get(config.model_name)
    registry.verify(model)
    return await serving.load(model, config.max_weight, on_ray=False)


# --- the command --------------------------------------------------------------------------------------------
def register(app: typer.Typer) -> None:
    app.command("replay")(replay_command)


def replay_command(
    start: str = typer.Option(..., "--from", help="window start: ISO 8601 (UTC unless zoned), UNIX ms, now, -2h"),
    end: str = typer.Option("now", "--to", help="window end (same forms)"),
    model_version: str | None = typer.Option(
        None, "--model-version", help="replay with this registered version instead of the production one"
    ),
    warmup: str = typer.Option("30m", "--warmup", help="bars read before the window to warm the features up"),
    equity: str | None = typer.Option(
        None, "--equity", help="sizing equity (default: risk's start-of-day equity of record plus the book's P&L)"
    ),
    publish: bool = typer.Option(
        False, "--publish", help="write the replayed decisions to topics of an isolated namespace replay-<time>."
    ),
    bootstrap: str | None = bootstrap_option(),
    namespace: str = typer.Option("", "--namespace", help="topic-name prefix of the recorded run"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable report"),
) -> None:
    """Re-run the recorded inputs between --from and --to through the signal, order-management and risk engines
    (in process; nothing is published to a live topic) and report every decision that differs from the recorded
    run. Exit code 0: none differ; 1: some do (listed); 2: bad arguments or configuration.

    The engines run with the configuration the services read now (TRADING_SIGNAL__*, TRADING_OMS__*,
    TRADING_RISK__*, e.g. TRADING_RISK__MAX_ORDER_NOTIONAL=20000) and the registry's production model, so a change
    shows as the decisions it would have changed. Example: tradectl replay --from -2h --to -1h --json
    """
    from trading_platform.settings import ConfigError

    start_ms, end_ms = parse_time(start, "--from"), parse_time(end, "--to")
    if end_ms <= start_ms:
        raise typer.BadParameter(
            f"the window ends ({iso(end_ms)}) before it starts ({iso(start_ms)})", param_hint="--to"
        )
    warmup_s = parse_duration_s(warmup, "--warmup")
    try:
        fixed_equity = Decimal(equity) if equity is not None else None
    except ArithmeticError:
        raise typer.BadParameter(f"{equity!r} is not a number", param_hint="--equity") from None
    connection = resolve_connection(bootstrap)
    try:
        settings = load_configs(connection.bootstrap_servers)
    except ConfigError as error:
        console.print(f"[red]the services' configuration does not load: {error}[/red]")
        raise typer.Exit(2) from None
    except ImportError as error:
        console.print(
            f"[red]tradectl replay runs the services' engines and needs their packages ({error.name}): "
            "pip install -e services/signal -e services/order-management -e services/risk[/red]"
        )
        raise typer.Exit(2) from None

    async def run() -> Report:
        policy = await load_policy(settings["signal"], model_version)
        return await run_replay(
            connection,
            namespace,
            start_ms,
            end_ms,
            settings,
            policy,
            warmup_s=warmup_s,
            equity=fixed_equity,
            publish=publish,
        )

    try:
        report = asyncio.run(run())
    except BrokerUnavailableError as error:
        console.print(f"[red]{error}[/red]\nIs the stack up (`tradectl dev status`)? Or pass --bootstrap.")
        raise typer.Exit(1) from None
    except Exception as error:
        from trading_policy import RegistryError

        if isinstance(error, RegistryError):
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        raise
    if as_json:
        print(json.dumps({**asdict(report), "difference_count": len(report.differences)}, indent=2, default=str))
    else:
        _print(report)
    raise typer.Exit(1 if report.differences else 0)


def _print(report: Report) -> None:
    console.print(
        f"replayed {report.window['from']} .. {report.window['to']} with {report.model}, limits "
        f"{report.limits_version}: {report.inputs['bars']} bars, {report.inputs['execution_reports']} execution "
        f"reports; decisions compared: " + ", ".join(f"{k} {v}" for k, v in report.compared.items())
    )
    if report.namespace:
        console.print(f"replayed decisions written under the namespace {report.namespace}")
    if not report.differences:
        console.print("[green]0 differences: every decision is the recorded one[/green]")
        return
    table = Table(title=f"{len(report.differences)} decisions differ")
    for column in ("engine", "decision of", "field", "recorded", "replayed"):
        table.add_column(column)
    for d in report.differences:
        table.add_row(
            d.engine, d.key, d.field, json.dumps(d.recorded, default=str), json.dumps(d.replayed, default=str)
        )
    Console().print(table)
