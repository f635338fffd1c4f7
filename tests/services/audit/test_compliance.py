"""tradectl compliance report over a known trading run: the audit service (AuditApp) records, over the real embedded
broker, the messages of a run as the services publish them: the risk decisions are the real risk engine's verdicts
(an order over its size limit, an order after the kill switch), the rest are built as each service builds them (a
signal-driven order filled in two parts with a fill delivered twice, a manual order cancelled, a broker rejection,
a four-eyes limits raise and an expired resume, logins, a lockout, a role grant, a refused call, a promotion and a
model swap). The report is built from that ledger and each section is checked row by row. Also: an empty range, a
tampered ledger, bad dates, retention to a folder, and retention to S3 (moto's standalone server, conftest.py): the
run's sealed segments archived, read back and reported where they went, the archive read back from the bucket by the
next report, a tampered object, refused credentials, an unreachable store, a shared prefix, and bad settings, each
named by its key (in the report and at the service's start-up) with nothing moved."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from audit_service.__main__ import main as audit_service_main
from audit_service.app import AuditApp
from audit_service.archive import FolderArchive, archive_sealed, finish_interrupted
from audit_service.config import AuditSettings
from audit_service.ledger import LENGTH, Ledger, read_entries, read_segment, verify
from risk_service.config import RiskConfig
from risk_service.engine import RiskEngine
from tradectl import compliance as compliance_command
from tradectl.main import app as tradectl
from trading.audit.v1 import audit_pb2
from trading.common.v1 import common_pb2
from trading.deploy.v1 import deploy_pb2
from trading.execution.v1 import execution_pb2
from trading.identity.v1 import identity_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading.security.v1 import security_pb2
from trading.signal.v1 import signal_pb2
from trading_platform.clock import SimulatedClock
from trading_platform.decimals import to_proto
from trading_platform.devstack import free_port
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher
from trading_platform.settings import load_settings
from typer.testing import CliRunner

from tests.services.audit.s3store import BUCKET, S3Store

pytestmark = pytest.mark.integration
runner = CliRunner()
DAY = "2026-03-02"
T0 = int(dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
BUY, SELL = common_pb2.ORDER_SIDE_BUY, common_pb2.ORDER_SIDE_SELL
ER = execution_pb2


def at(second: int) -> str:
    return (
        (dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC) + dt.timedelta(seconds=second))
        .isoformat()
        .replace("+00:00", "Z")
    )


class Run:
    """The messages of the run, each with its event time T0 + n seconds, in the order they happen."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any, str]] = []
        self.clock = 0

    def add(self, topic: str, message: Any, key: str, producer: str) -> Any:
        message.envelope.CopyFrom(new_envelope(producer, ts_event=T0 + self.clock * 1_000_000_000))
        self.clock += 1
        self.messages.append((topic, message, key))
        return message


def order(cid: str, symbol: str, side: int, qty: str, status: int, lineage: oms_pb2.OrderLineage) -> oms_pb2.Order:
    return oms_pb2.Order(
        client_order_id=cid,
        symbol=symbol,
        side=side,
        quantity=to_proto(qty),
        status=status,
        lineage=lineage,
        order_type=common_pb2.ORDER_TYPE_MARKET,
    )


def order_event(
    run: Run, kind: int, book: oms_pb2.Order, last: tuple[str, str] | None = None, reason: str = ""
) -> None:
    event = oms_pb2.OrderEvent(event_type=kind, client_order_id=book.client_order_id, order=book, reason=reason)
    if last:
        event.last_quantity.CopyFrom(to_proto(last[0]))
        event.last_price.CopyFrom(to_proto(last[1]))
    run.add("oms.events.v1", event, book.client_order_id, "order-management")


def report(run: Run, cid: str, kind: int, symbol: str, side: int, **fields: Any) -> None:
    message = ER.ExecutionReport(
        report_type=kind, client_order_id=cid, broker_order_id=f"b-{cid}", symbol=symbol, side=side
    )
    for name in ("last_quantity", "last_price", "filled_quantity"):
        if name in fields:
            getattr(message, name).CopyFrom(to_proto(fields.pop(name)))
    for name, value in fields.items():
        setattr(message, name, value)
    run.add("execution.reports.v1", message, cid, "execution")


def gate() -> RiskEngine:
    """The real pre-trade gate of the risk service, its day started, prices known, an order size limit of 100."""
    engine = RiskEngine(RiskConfig(max_order_quantity=Decimal(100)), SimulatedClock(T0))
    engine.mark_ready()
    engine.start_day(engine.trading_day(T0), Decimal(1_000_000))
    for symbol, price in (("AAPL", "100"), ("MSFT", "300"), ("TSLA", "200")):
        engine.on_price(symbol, Decimal(price))
    return engine


def decision(run: Run, engine: RiskEngine, cid: str, symbol: str, side: int, qty: str) -> risk_pb2.RiskDecision:
    """What the risk service publishes for a check: the engine's verdict, as RiskApp.CheckOrder builds it."""
    request = risk_pb2.CheckOrderRequest(
        client_order_id=cid, symbol=symbol, side=side, quantity=to_proto(qty), order_type=common_pb2.ORDER_TYPE_MARKET
    )
    verdict = engine.check(request)
    made = risk_pb2.RiskDecision(
        client_order_id=cid,
        approved=verdict.approved,
        reason_code=verdict.reason_code,
        reason=verdict.reason,
        trading_state=engine.trading_state,
        limits_version=engine.limits.limits_version,
        symbol=symbol,
        side=side,
        quantity=request.quantity,
    )
    if verdict.approved:
        engine.on_decision(made)
    return run.add("risk.decisions.v1", made, cid, "risk")  # type: ignore[no-any-return]


def submit(run: Run, cid: str, symbol: str, side: int, qty: str, arrival: str, lineage: oms_pb2.OrderLineage) -> None:
    command = oms_pb2.OrderCommand(
        submit_order=oms_pb2.SubmitOrder(
            client_order_id=cid,
            symbol=symbol,
            side=side,
            quantity=to_proto(qty),
            order_type=common_pb2.ORDER_TYPE_MARKET,
            lineage=lineage,
            arrival_price=to_proto(arrival),
        )
    )
    run.add("oms.commands.v1", command, cid, "order-management")


def trading_run() -> Run:
    run = Run()
    engine = gate()
    S = oms_pb2
    signal = run.add(
        "signal.signals.v1",
        signal_pb2.SignalGenerated(
            symbol="AAPL",
            strategy_id="momentum",
            target_weight=0.01,
            reference_price=to_proto("100"),
            model_name="ppo",
            model_version="ppo-7",
            feature_hash="fh-aapl",
        ),
        "AAPL",
        "signal",
    )
    a = S.OrderLineage(
        signal_id=signal.envelope.message_id, strategy_id="momentum", model_version="ppo-7", feature_hash="fh-aapl"
    )
    # A: signal-driven, approved, filled 4 @ 100.10 then 6 @ 100.20; the last fill is delivered twice.
    decision(run, engine, "co-A", "AAPL", BUY, "10")
    submit(run, "co-A", "AAPL", BUY, "10", "100.05", a)
    order_event(run, S.ORDER_EVENT_TYPE_SUBMITTED, order("co-A", "AAPL", BUY, "10", S.ORDER_STATUS_SUBMITTED, a))
    report(run, "co-A", ER.EXECUTION_REPORT_TYPE_NEW, "AAPL", BUY)
    order_event(run, S.ORDER_EVENT_TYPE_ACCEPTED, order("co-A", "AAPL", BUY, "10", S.ORDER_STATUS_ACCEPTED, a))
    report(
        run,
        "co-A",
        ER.EXECUTION_REPORT_TYPE_PARTIAL_FILL,
        "AAPL",
        BUY,
        last_quantity="4",
        last_price="100.10",
        filled_quantity="4",
        fill_id="f-A-1",
    )
    order_event(
        run,
        S.ORDER_EVENT_TYPE_PARTIALLY_FILLED,
        order("co-A", "AAPL", BUY, "10", S.ORDER_STATUS_PARTIALLY_FILLED, a),
        ("4", "100.10"),
    )
    report(
        run,
        "co-A",
        ER.EXECUTION_REPORT_TYPE_FILL,
        "AAPL",
        BUY,
        last_quantity="6",
        last_price="100.20",
        filled_quantity="10",
        fill_id="f-A-2",
    )
    report(
        run,
        "co-A",
        ER.EXECUTION_REPORT_TYPE_FILL,
        "AAPL",
        BUY,
        last_quantity="6",
        last_price="100.20",
        filled_quantity="10",
        fill_id="f-A-2",
    )
    order_event(
        run, S.ORDER_EVENT_TYPE_FILLED, order("co-A", "AAPL", BUY, "10", S.ORDER_STATUS_FILLED, a), ("6", "100.20")
    )
    run.add(
        "execution.quality.v1",
        ER.ExecutionQualityMeasured(
            client_order_id="co-A",
            symbol="AAPL",
            submit_to_accept_ns=120_000_000,
            submit_to_first_fill_ns=900_000_000,
            submit_to_last_fill_ns=2_500_000_000,
            arrival_price=to_proto("100.05"),
            average_fill_price=to_proto("100.16"),
            slippage_bps=10.99,
            fill_ratio=1.0,
        ),
        "co-A",
        "execution",
    )
    # B: denied for size.
    denied = decision(run, engine, "co-B", "MSFT", SELL, "500")
    order_event(
        run,
        S.ORDER_EVENT_TYPE_DENIED,
        order("co-B", "MSFT", SELL, "500", S.ORDER_STATUS_DENIED, S.OrderLineage()),
        reason=denied.reason,
    )
    # C: a manual order by alice, cancelled by her.
    c = S.OrderLineage(signal_id="manual-1", strategy_id="manual", submitted_by="alice")
    decision(run, engine, "co-C", "MSFT", BUY, "5")
    submit(run, "co-C", "MSFT", BUY, "5", "300", c)
    report(run, "co-C", ER.EXECUTION_REPORT_TYPE_NEW, "MSFT", BUY)
    run.add(
        "oms.commands.v1",
        S.OrderCommand(
            cancel_order=S.CancelOrder(client_order_id="co-C", reason="changed my mind", requested_by="alice")
        ),
        "co-C",
        "order-management",
    )
    report(run, "co-C", ER.EXECUTION_REPORT_TYPE_CANCELED, "MSFT", BUY)
    order_event(run, S.ORDER_EVENT_TYPE_CANCELED, order("co-C", "MSFT", BUY, "5", S.ORDER_STATUS_CANCELED, c))
    # D: rejected by the broker.
    d = S.OrderLineage(signal_id="sig-d", strategy_id="momentum", model_version="ppo-7", feature_hash="fh-tsla")
    decision(run, engine, "co-D", "TSLA", BUY, "2")
    submit(run, "co-D", "TSLA", BUY, "2", "200", d)
    report(run, "co-D", ER.EXECUTION_REPORT_TYPE_REJECTED, "TSLA", BUY, reason="insufficient buying power")
    order_event(
        run,
        S.ORDER_EVENT_TYPE_REJECTED,
        order("co-D", "TSLA", BUY, "2", S.ORDER_STATUS_REJECTED, d),
        reason="insufficient buying power",
    )
    # A breach, the kill switch, and the order the halt denied.
    run.add(
        "risk.alerts.v1",
        risk_pb2.RiskAlertRaised(
            kind="daily_loss", severity=risk_pb2.ALERT_SEVERITY_CRITICAL, message="loss 5100 > 5000"
        ),
        "daily_loss",
        "risk",
    )
    run.add(
        "risk.state.v1",
        risk_pb2.TradingStateChanged(
            previous_state=risk_pb2.TRADING_STATE_ACTIVE,
            state=risk_pb2.TRADING_STATE_HALTED,
            reason="kill switch",
            actor="alice",
            cancel_open_orders=True,
        ),
        "_state",
        "risk",
    )
    engine.set_state(risk_pb2.TRADING_STATE_HALTED, "kill switch")
    decision(run, engine, "co-E", "AAPL", BUY, "1")
    # Four eyes: alice asks for a limits raise, bob approves; alice's resume expires unapproved.
    raise_ = risk_pb2.ProposedChange(
        limits=risk_pb2.LimitsRaise(raised=risk_pb2.RiskLimits(max_order_quantity=to_proto("200")), version="v2")
    )
    resume = risk_pb2.ProposedChange(
        trading_state=risk_pb2.TradingStateChange(
            from_state=risk_pb2.TRADING_STATE_HALTED, state=risk_pb2.TRADING_STATE_ACTIVE
        )
    )
    C = risk_pb2
    run.add(
        "risk.changes.v1",
        C.RiskChangeRecorded(
            change_id="ch-1",
            event_type=C.CHANGE_EVENT_TYPE_REQUESTED,
            change=raise_,
            actor="alice",
            requested_by="alice",
            reason="bigger clips",
        ),
        "ch-1",
        "risk",
    )
    run.add(
        "risk.changes.v1",
        C.RiskChangeRecorded(
            change_id="ch-1",
            event_type=C.CHANGE_EVENT_TYPE_APPROVED,
            change=raise_,
            actor="bob",
            requested_by="alice",
            reason="ok",
        ),
        "ch-1",
        "risk",
    )
    run.add(
        "risk.limits.v1",
        C.LimitsChanged(
            previous=C.RiskLimits(version="v1"), limits=C.RiskLimits(version="v2"), actor="bob", reason="approved ch-1"
        ),
        "_limits",
        "risk",
    )
    run.add(
        "risk.changes.v1",
        C.RiskChangeRecorded(
            change_id="ch-2",
            event_type=C.CHANGE_EVENT_TYPE_REQUESTED,
            change=resume,
            actor="alice",
            requested_by="alice",
            reason="resume",
        ),
        "ch-2",
        "risk",
    )
    run.add(
        "risk.changes.v1",
        C.RiskChangeRecorded(
            change_id="ch-2",
            event_type=C.CHANGE_EVENT_TYPE_EXPIRED,
            change=resume,
            actor="risk",
            requested_by="alice",
            reason="no approval within 15 min",
        ),
        "ch-2",
        "risk",
    )
    # Access.
    ident = identity_pb2
    run.add(
        "identity.events.v1",
        ident.IdentityEvent(
            actor="alice",
            client_address="10.0.0.5",
            login_succeeded=ident.LoginSucceeded(username="alice", session_id="s1", method="password+totp"),
        ),
        "alice",
        "gateway",
    )
    run.add(
        "identity.events.v1",
        ident.IdentityEvent(
            actor="mallory",
            client_address="10.0.0.9",
            login_failed=ident.LoginFailed(username="mallory", reason="bad_password"),
        ),
        "mallory",
        "gateway",
    )
    run.add(
        "identity.events.v1",
        ident.IdentityEvent(
            actor="mallory",
            client_address="10.0.0.9",
            login_locked_out=ident.LoginLockedOut(scope="user", subject="mallory", locked_until=T0 + 3600 * 10**9),
        ),
        "mallory",
        "gateway",
    )
    run.add(
        "identity.events.v1",
        ident.IdentityEvent(actor="admin", role_granted=ident.RoleGranted(username="bob", role="risk_officer")),
        "bob",
        "gateway",
    )
    run.add(
        "identity.events.v1",
        ident.IdentityEvent(
            actor="admin", api_key_created=ident.ApiKeyCreated(key_id="k1", name="ci", owner="alice", roles=["viewer"])
        ),
        "alice",
        "gateway",
    )
    run.add(
        "security.refusals.v1",
        security_pb2.AccessRefused(
            service="risk",
            method="/trading.risk.v1.RiskService/SetTradingState",
            code="PERMISSION_DENIED",
            reason="role trader may not",
            actor="mallory",
            peer="10.0.0.9",
        ),
        "risk",
        "risk",
    )
    run.add(
        "oms.commands.v1.dlq",
        common_pb2.DeadLetter(
            source_topic="oms.commands.v1",
            source_offset=7,
            reason_code="undecodable",
            reason="not a trading.oms.v1.OrderCommand",
            consumer_group="execution",
            attempts=1,
        ),
        "co-X",
        "execution",
    )
    # Changes.
    run.add(
        "platform.deployments.v1",
        deploy_pb2.DeploymentChanged(
            service="signal",
            action="promote",
            from_colour="blue",
            to_colour="green",
            checks=["health", "lag"],
            operator="carol",
        ),
        "signal",
        "tradectl",
    )
    run.add(
        "signal.models.v1",
        signal_pb2.ModelChanged(
            role="live",
            model_name="ppo",
            previous_version="ppo-6",
            model_version="ppo-7",
            content_hash="h7",
            reason="promoted",
        ),
        "ppo",
        "signal",
    )
    return run


@dataclass
class Recorded:
    ledger: Path
    run: Run


@pytest.fixture(scope="module")
async def recorded(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Recorded]:
    """The audit service recording the run over the real broker; the ledger folder once every message is in."""
    namespace = f"t{uuid.uuid4().hex[:10]}."
    directory = tmp_path_factory.mktemp("ledger")
    settings = load_settings(
        AuditSettings,
        kafka={"bootstrap_servers": kafka_bootstrap, "namespace": namespace, "rebalance_timeout_ms": 1000},
        audit={"ledger_dir": str(directory)},
    )
    audit = AuditApp(settings)
    await audit.start()
    publisher = Publisher(kafka_bootstrap, "test", namespace=namespace)
    await publisher.start()
    run = trading_run()
    try:
        for topic, message, key in run.messages:
            await publisher.publish(topic, message, key=key)
        deadline = time.monotonic() + 60
        while audit.ledger.sequence < len(run.messages):
            assert time.monotonic() < deadline, f"audit recorded {audit.ledger.sequence} of {len(run.messages)}"
            await asyncio.sleep(0.2)
    finally:
        await publisher.stop()
        await audit.stop()
    yield Recorded(directory, run)


def compliance(*args: str, env: dict[str, str] | None = None) -> Any:
    # A wide terminal: typer draws errors in a box that would wrap long paths.
    return runner.invoke(tradectl, ["compliance", "report", *args], env={"COLUMNS": "400", **(env or {})})


def rows(out: Path, section: str) -> list[dict[str, str]]:
    with (out / f"{section}.csv").open() as handle:
        return list(csv.DictReader(handle))


def pick(table: list[dict[str, str]], *columns: str) -> list[tuple[str, ...]]:
    return [tuple(row[c] for c in columns) for row in table]


def test_each_section_of_the_report_holds_the_rows_of_the_run(recorded: Recorded, tmp_path: Path) -> None:
    result = compliance("--from", DAY, "--to", DAY, "--out", str(tmp_path), "--ledger", str(recorded.ledger), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    total = len(recorded.run.messages)
    assert summary["verification"] == {"ok": True, "entries_checked": total, "first_error": ""}
    assert summary["entries_in_range"] == total
    head = list(read_entries(recorded.ledger))[-1]
    assert pick(rows(tmp_path, "checkpoints"), "segment", "first_sequence", "last_sequence", "last_hash") == [
        ("segment-000001.log (open)", "1", str(total), head.hash)
    ]
    document = json.loads((tmp_path / "report.json").read_text())
    assert document["summary"] == summary
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "Ledger verified: " + str(total) + " entries" in html

    # The blotter: every fill once (the repeated delivery of f-A-2 is one trade), decimals exact.
    assert rows(tmp_path, "blotter") == [
        {
            "time": at(6),
            "symbol": "AAPL",
            "side": "BUY",
            "quantity": "4",
            "price": "100.1",
            "client_order_id": "co-A",
            "broker_order_id": "b-co-A",
            "fill_id": "f-A-1",
        },
        {
            "time": at(8),
            "symbol": "AAPL",
            "side": "BUY",
            "quantity": "6",
            "price": "100.2",
            "client_order_id": "co-A",
            "broker_order_id": "b-co-A",
            "fill_id": "f-A-2",
        },
    ]
    assert document["sections"]["blotter"][0]["price"] == "100.1"  # a string in the JSON too

    # The order trail: every event of order A in time, its actor, lineage and risk decision.
    trail = rows(tmp_path, "order_trail")
    signal_id = recorded.run.messages[0][1].envelope.message_id
    a = [r for r in trail if r["client_order_id"] == "co-A"]
    assert pick(a, "event_time", "event", "actor") == [
        (at(1), "risk approved", "risk"),
        (at(2), "submit_order", "order-management"),
        (at(3), "SUBMITTED", "order-management"),
        (at(4), "report NEW", "execution"),
        (at(5), "ACCEPTED", "order-management"),
        (at(6), "report PARTIAL_FILL", "execution"),
        (at(7), "PARTIALLY_FILLED", "order-management"),
        (at(8), "report FILL", "execution"),
        (at(9), "report FILL", "execution"),
        (at(10), "FILLED", "order-management"),
        (at(11), "ExecutionQualityMeasured", "execution"),
    ]
    assert {(r["signal_id"], r["model_version"], r["feature_hash"], r["risk_decision"]) for r in a} == {
        (signal_id, "ppo-7", "fh-aapl", "approved")
    }
    assert all(r["recorded_at"] and r["sequence"] for r in a)
    c = [r for r in trail if r["client_order_id"] == "co-C"]
    assert pick(c, "event", "actor", "detail") == [
        ("risk approved", "risk", "approved"),
        ("submit_order", "alice", ""),
        ("report NEW", "execution", ""),
        ("cancel_order", "alice", "changed my mind"),
        ("report CANCELED", "execution", ""),
        ("CANCELED", "order-management", ""),
    ]
    assert {r["risk_decision"] for r in trail if r["client_order_id"] == "co-B"} == {"denied: MAX_ORDER_QUANTITY"}
    assert sorted({r["client_order_id"] for r in trail}) == ["co-A", "co-B", "co-C", "co-D", "co-E"]

    # Risk: the two denials the real gate made (size over its limit of 100, then the halt) and the breach, and the
    # counts by reason.
    said = {m.client_order_id: m.reason for t, m, _ in recorded.run.messages if t == "risk.decisions.v1"}
    assert "500" in said["co-B"] and "100" in said["co-B"]
    assert pick(rows(tmp_path, "risk_events"), "kind", "reason", "client_order_id", "detail") == [
        ("denial", "MAX_ORDER_QUANTITY", "co-B", said["co-B"]),
        ("breach", "daily_loss", "", "CRITICAL: loss 5100 > 5000"),
        ("denial", "TRADING_HALTED", "co-E", "trading is halted: kill switch"),
    ]
    assert pick(rows(tmp_path, "risk_by_reason"), "kind", "reason", "count") == [
        ("breach", "daily_loss", "1"),
        ("denial", "MAX_ORDER_QUANTITY", "1"),
        ("denial", "TRADING_HALTED", "1"),
    ]

    # Controls: who asked, who approved, what expired.
    assert pick(
        rows(tmp_path, "control_changes"), "source", "change_id", "change", "event", "actor", "requested_by"
    ) == [
        ("risk.state.v1", "", "trading state ACTIVE -> HALTED (cancel open orders)", "APPLIED", "alice", ""),
        ("risk.changes.v1", "ch-1", "limits v2: max_order_quantity=200", "REQUESTED", "alice", "alice"),
        ("risk.changes.v1", "ch-1", "limits v2: max_order_quantity=200", "APPROVED", "bob", "alice"),
        ("risk.limits.v1", "", "limits v1 -> v2", "APPLIED", "bob", ""),
        ("risk.changes.v1", "ch-2", "trading state HALTED -> ACTIVE", "REQUESTED", "alice", "alice"),
        ("risk.changes.v1", "ch-2", "trading state HALTED -> ACTIVE", "EXPIRED", "risk", "alice"),
    ]

    # Access: logins, the failure, the lockout, role and key changes, the refused call.
    assert pick(rows(tmp_path, "access"), "event", "actor", "subject", "client_address") == [
        ("login_succeeded", "alice", "alice", "10.0.0.5"),
        ("login_failed", "mallory", "mallory", "10.0.0.9"),
        ("login_locked_out", "mallory", "mallory", "10.0.0.9"),
        ("role_granted", "admin", "bob", ""),
        ("api_key_created", "admin", "alice", ""),
        ("refused PERMISSION_DENIED", "mallory", "risk/trading.risk.v1.RiskService/SetTradingState", "10.0.0.9"),
    ]
    access = rows(tmp_path, "access")
    assert "reason=bad_password" in access[1]["detail"] and f"locked_until={at(3600)}" in access[2]["detail"]
    assert "role=risk_officer" in access[3]["detail"]

    # Dead letters.
    assert pick(rows(tmp_path, "dead_letters"), "source_topic", "source_offset", "reason_code", "consumer_group") == [
        ("oms.commands.v1", "7", "undecodable", "execution")
    ]

    # Model and deployment changes.
    assert pick(rows(tmp_path, "model_deployment"), "subject", "action", "from", "to", "operator") == [
        ("signal", "promote", "blue", "green", "carol"),
        ("ppo (live)", "load", "ppo-6", "ppo-7", "signal"),
    ]

    # Best execution: A against its signal's reference price (100): avg 100.16 = +16 bps, fully filled; C against
    # its arrival price, nothing filled; rates over the three orders that reached the broker.
    best = {r["client_order_id"]: r for r in rows(tmp_path, "best_execution")}
    assert pick(
        [best["co-A"]],
        "reference_price",
        "reference_source",
        "average_fill_price",
        "slippage_bps",
        "fill_ratio",
        "status",
    ) == [("100", "signal reference price", "100.16", "16.00", "1.0000", "FILLED")]
    # ... and the execution service's own measure (against its arrival price) and latencies, as it recorded them.
    assert pick([best["co-A"]], "execution_slippage_bps", "submit_to_accept_ms", "submit_to_last_fill_ms") == [
        ("10.99", "120.000", "2500.000")
    ]
    assert best["co-C"]["execution_slippage_bps"] == ""
    assert pick([best["co-C"]], "reference_price", "reference_source", "filled_quantity", "slippage_bps", "status") == [
        ("300", "order arrival price", "0", "", "CANCELED")
    ]
    assert best["co-B"]["status"] == "DENIED" and best["co-E"]["status"] == "DENIED"
    assert summary["best_execution"] == {
        "orders": "5",
        "sent_to_broker": "3",
        "denied_by_risk": "2",
        "filled": "1",
        "rejected": "1",
        "canceled": "1",
        "reject_rate": "0.3333",
        "cancel_rate": "0.3333",
        "fill_ratio": "0.5882",
        "arrival_slippage_bps_weighted": "16.00",
        "sent_orders_without_reference_price": "0",
    }
    assert summary["not_available"] and "spread" in summary["not_available"][0]
    assert summary["retention"] == {
        "retention_days": 0,
        "target": "folder",
        "archive": str(recorded.ledger.parent / "audit-archive"),
        "archived_segments": 0,
    }


def test_a_range_without_entries_writes_an_empty_valid_report(recorded: Recorded, tmp_path: Path) -> None:
    result = compliance(
        "--from", "2001-01-01", "--to", "2001-01-31", "--out", str(tmp_path), "--ledger", str(recorded.ledger), "--json"
    )
    assert result.exit_code == 0, result.output
    assert "no ledger entries between 2001-01-01T00:00:00Z and 2001-02-01T00:00:00Z" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["entries_in_range"] == 0 and summary["verification"]["ok"]
    for section in ("blotter", "order_trail", "risk_events", "control_changes", "access", "best_execution"):
        assert rows(tmp_path, section) == []
        assert (tmp_path / f"{section}.csv").read_text().startswith(("time,", "client_order_id,"))
    assert json.loads((tmp_path / "report.json").read_text())["sections"]["blotter"] == []
    assert "No rows in this period." in (tmp_path / "report.html").read_text()


def test_a_tampered_ledger_fails_the_report_naming_the_first_bad_entry(recorded: Recorded, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    shutil.copytree(recorded.ledger, ledger)
    segment = sorted(ledger.glob("segment-*.log"))[0]
    entries = [e for _, e, _ in read_segment(segment)]
    assert entries[5] is not None
    forged = audit_pb2.LedgerEntry()
    forged.CopyFrom(entries[5])
    forged.payload = b"forged"
    entries[5] = forged
    segment.write_bytes(
        b"".join(LENGTH.pack(len(b)) + b for b in (e.SerializeToString(deterministic=True) for e in entries if e))
    )
    out = tmp_path / "report"
    result = compliance("--from", DAY, "--to", DAY, "--out", str(out), "--ledger", str(ledger))
    assert result.exit_code == 1
    assert f"{segment.name}, entry 5: hash mismatch (the entry was altered)" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--from", "2026-13-01", "--to", DAY], "--from"),
        (["--from", DAY, "--to", "yesterday"], "--to"),
        (["--from", DAY, "--to", "2026-03-01"], "--to"),
    ],
)
def test_bad_dates_name_the_flag(tmp_path: Path, args: list[str], flag: str) -> None:
    result = compliance(*args, "--out", str(tmp_path / "out"), "--ledger", str(tmp_path))
    assert result.exit_code == 2
    assert flag in result.stderr and "Invalid value" in result.stderr
    assert not (tmp_path / "out").exists()


def old_ledger(directory: Path, days_old: list[int], per_segment: int = 3) -> None:
    """A ledger whose segments hold entries recorded days_old[i] days ago (one segment per item, the last open)."""
    ledger = Ledger(directory, per_segment)
    now = time.time_ns()
    for number, days in enumerate(days_old):
        for index in range(per_segment):
            ledger.append(
                audit_pb2.LedgerEntry(
                    topic="oms.events.v1",
                    partition=0,
                    offset=number * per_segment + index,
                    recorded_at=now - days * 24 * 3600 * 10**9,
                    ts_event=now - days * 24 * 3600 * 10**9,
                )
            )
            ledger.roll_if_full()
    ledger.append(audit_pb2.LedgerEntry(topic="oms.events.v1", partition=0, offset=999, recorded_at=now))
    ledger.close()


def test_retention_archives_old_sealed_segments_and_the_rest_still_verifies(tmp_path: Path) -> None:
    ledger, archive = tmp_path / "ledger", tmp_path / "archive"
    old_ledger(ledger, [40, 35, 10])  # three sealed segments, then an open one
    seals = {p.name: json.loads(p.read_text()) for p in ledger.glob("*.seal")}
    out = tmp_path / "report"
    result = compliance(
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
        "--out",
        str(out),
        "--ledger",
        str(ledger),
        "--retention-days",
        "30",
        "--archive-dir",
        str(archive),
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in ledger.glob("segment-*.log")) == ["segment-000003.log", "segment-000004.log"]
    assert sorted(p.name for p in archive.iterdir()) == [
        "segment-000001.log",
        "segment-000001.seal",
        "segment-000002.log",
        "segment-000002.seal",
    ]
    for name in ("segment-000001", "segment-000002"):
        assert (
            hashlib.sha256((archive / f"{name}.log").read_bytes()).hexdigest()
            == seals[f"{name}.seal"]["checkpoint_hash"]
        )
    assert pick(rows(out, "retention"), "segment", "action", "target", "last_sequence") == [
        ("segment-000001.log", "archived", str(archive / "segment-000001.log"), "3"),
        ("segment-000002.log", "archived", str(archive / "segment-000002.log"), "6"),
    ]
    for row in rows(out, "retention"):  # what was read back from the archive: the sealed size and hash
        assert (
            row["read_back_sha256"]
            == row["checkpoint_hash"]
            == seals[row["segment"].replace(".log", ".seal")]["checkpoint_hash"]
        )
        assert row["bytes"] == str((archive / row["segment"]).stat().st_size)
    # The report covered the whole ledger before the move; what stays verifies from the anchor.
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["entries_in_range"] == 10 and summary["retention"]["archived_segments"] == 2
    assert pick(rows(out, "checkpoints"), "segment", "last_sequence", "checkpoint_hash") == [
        ("segment-000001.log", "3", seals["segment-000001.seal"]["checkpoint_hash"]),
        ("segment-000002.log", "6", seals["segment-000002.seal"]["checkpoint_hash"]),
        ("segment-000003.log", "9", seals["segment-000003.seal"]["checkpoint_hash"]),
        ("segment-000004.log (open)", "10", ""),
    ]
    after = verify(ledger)
    assert after.ok and after.entries_checked == 4
    assert len(list(read_entries(ledger))) == 4


def test_archived_segments_are_verified_with_the_ledger_and_reported(tmp_path: Path) -> None:
    ledger, archive = tmp_path / "ledger", tmp_path / "archive"
    old_ledger(ledger, [40, 35, 10])
    archive_sealed(ledger, FolderArchive(archive), 30, time.time_ns())
    everything = ["--from", "2000-01-01", "--to", "2100-01-01", "--ledger", str(ledger), "--archive-dir", str(archive)]
    result = compliance(*everything, "--out", str(tmp_path / "all"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["entries_in_range"] == 10 and summary["verification"]["entries_checked"] == 10
    assert [r["segment"] for r in rows(tmp_path / "all", "checkpoints")] == [
        "archive/segment-000001.log",
        "archive/segment-000002.log",
        "anchor (through segment-000002.log)",
        "segment-000003.log",
        "segment-000004.log (open)",
    ]
    # An archived segment altered: the report fails and names it.
    first = archive / "segment-000001.log"
    original = first.read_bytes()
    first.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    altered = compliance(*everything, "--out", str(tmp_path / "altered"))
    assert altered.exit_code == 1 and f"archive {archive}: segment-000001.log" in altered.stderr
    first.write_bytes(original)
    # An archived segment missing: the archive no longer reaches the ledger's anchor.
    (archive / "segment-000002.log").unlink()
    (archive / "segment-000002.seal").unlink()
    missing = compliance(*everything, "--out", str(tmp_path / "missing"))
    assert missing.exit_code == 1 and "segments are missing between the archive and the ledger" in missing.stderr
    assert not (tmp_path / "altered").exists() and not (tmp_path / "missing").exists()


def test_a_missing_ledger_or_a_file_as_out_names_the_flag(tmp_path: Path) -> None:
    missing = compliance("--from", DAY, "--to", DAY, "--out", str(tmp_path / "out"), "--ledger", str(tmp_path / "no"))
    assert missing.exit_code == 2 and "--ledger" in missing.stderr and "is not a folder" in missing.stderr
    (tmp_path / "file").write_text("keep me")
    as_file = compliance("--from", DAY, "--to", DAY, "--out", str(tmp_path / "file"), "--ledger", str(tmp_path))
    assert as_file.exit_code == 2 and "--out" in as_file.stderr
    assert (tmp_path / "file").read_text() == "keep me"


def test_a_move_cut_short_after_the_anchor_is_finished_by_the_next_run(tmp_path: Path) -> None:
    ledger, archive = tmp_path / "ledger", tmp_path / "archive"
    old_ledger(ledger, [40, 10])
    archive_sealed(ledger, FolderArchive(archive), 30, time.time_ns())
    # As if the process stopped after writing the anchor: the archived segment is back in the ledger.
    shutil.copy2(archive / "segment-000001.log", ledger / "segment-000001.log")
    shutil.copy2(archive / "segment-000001.seal", ledger / "segment-000001.seal")
    assert not verify(ledger).ok
    assert finish_interrupted(ledger, FolderArchive(archive)) == ["segment-000001.log"]
    assert verify(ledger).ok and sorted(p.name for p in ledger.glob("*.log")) == [
        "segment-000002.log",
        "segment-000003.log",
    ]


# --- retention to S3 -------------------------------------------------------------------------------------------------

LATER_NS = 40 * 24 * 3600 * 10**9
WIDE = ["--from", "2000-01-01", "--to", "2100-01-01"]


def resegmented(source: Path, into: Path, per_segment: int) -> Path:
    """The run's ledger as the service writes it with AUDIT__ENTRIES_PER_SEGMENT=per_segment: the entries it recorded,
    appended again in order through the calls AuditApp.on_message makes (append, then roll_if_full)."""
    ledger = Ledger(into, per_segment)
    for recorded_entry in read_entries(source):
        entry = audit_pb2.LedgerEntry()
        entry.CopyFrom(recorded_entry)
        for field in ("sequence", "prev_hash", "hash"):
            entry.ClearField(field)
        ledger.append(entry)
        ledger.roll_if_full()
    ledger.close()
    return into


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_the_run_archived_to_s3_is_reported_where_each_segment_went_and_read_back(
    recorded: Recorded, s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = resegmented(recorded.ledger, tmp_path / "ledger", 8)
    total = len(recorded.run.messages)
    seals = {p.name.replace(".seal", ".log"): json.loads(p.read_text()) for p in ledger.glob("*.seal")}
    original = files(ledger)
    sealed = sorted(seals)
    assert len(sealed) == total // 8 >= 4
    prefix = f"runs/{uuid.uuid4().hex[:8]}"
    env = s3_store.env(prefix)
    out = tmp_path / "report"
    # Forty days after the run (the report's clock only): every sealed segment is past a 30-day retention.
    monkeypatch.setattr(compliance_command, "time", SimpleNamespace(time_ns=lambda: time.time_ns() + LATER_NS))
    result = compliance(
        "--from",
        DAY,
        "--to",
        DAY,
        "--out",
        str(out),
        "--ledger",
        str(ledger),
        "--retention-days",
        "30",
        "--json",
        env=env,
    )
    monkeypatch.undo()
    assert result.exit_code == 0, result.output

    # Where each sealed segment went, and what the store gave back: the segment's size and its sealed hash.
    assert pick(rows(out, "retention"), "segment", "action", "target", "last_sequence") == [
        (name, "archived", f"s3://{BUCKET}/{prefix}/{name}", str(seals[name]["last_sequence"])) for name in sealed
    ]
    for row in rows(out, "retention"):
        assert row["bytes"] == str(len(original[row["segment"]]))
        assert row["read_back_sha256"] == row["checkpoint_hash"] == seals[row["segment"]]["checkpoint_hash"]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["retention"] == {
        "retention_days": 30,
        "target": "s3",
        "archive": f"s3://{BUCKET}/{prefix}/",
        "archived_segments": len(sealed),
    }
    # The bucket holds each segment and its seal byte for byte (read with a client of the test's own).
    client = s3_store.client()
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")["Contents"]
    moved = sorted([*sealed, *(n.replace(".log", ".seal") for n in sealed)])
    assert sorted(item["Key"] for item in listed) == [f"{prefix}/{name}" for name in moved]
    for name in moved:
        assert client.get_object(Bucket=BUCKET, Key=f"{prefix}/{name}")["Body"].read() == original[name]
    # The ledger keeps the open segment and the anchor, and verifies from it.
    assert sorted(files(ledger)) == ["anchor.json", f"segment-{len(sealed) + 1:06d}.log"]
    assert verify(ledger).ok

    # The next report reads the archive back from the bucket, verifies it with the ledger and reports the whole run.
    again = tmp_path / "again"
    later = compliance("--from", DAY, "--to", DAY, "--out", str(again), "--ledger", str(ledger), "--json", env=env)
    assert later.exit_code == 0, later.output
    summary = json.loads(later.stdout.strip().splitlines()[-1])
    assert summary["verification"] == {"ok": True, "entries_checked": total, "first_error": ""}
    assert summary["entries_in_range"] == total and summary["retention"]["archived_segments"] == 0
    for section in ("blotter", "order_trail", "risk_events", "control_changes", "access", "best_execution"):
        assert rows(again, section) == rows(out, section)
    assert [r["segment"] for r in rows(again, "checkpoints")] == [
        *(f"archive/{name}" for name in sealed),
        f"anchor (through {sealed[-1]})",
        f"segment-{len(sealed) + 1:06d}.log (open)",
    ]
    # No credential in anything the report printed or wrote.
    written = [p.read_text() for folder in (out, again) for p in folder.iterdir()]
    for text in [result.output, later.output, *written]:
        assert s3_store.secret_access_key not in text and s3_store.access_key_id not in text

    # An archived object altered in the bucket: the next report fails, naming the archive and the segment.
    first = original[sealed[0]]
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/{sealed[0]}", Body=first[:-1] + bytes([first[-1] ^ 1]))
    altered = compliance(*WIDE, "--out", str(tmp_path / "altered"), "--ledger", str(ledger), env=env)
    assert altered.exit_code == 1, altered.output
    assert f"archive s3://{BUCKET}/{prefix}/: {sealed[0]}" in altered.stderr
    assert not (tmp_path / "altered").exists()


@pytest.mark.parametrize("case", ["a wrong secret key", "nobody listening"])
def test_an_s3_archive_that_refuses_or_does_not_answer_leaves_the_ledger_whole(
    s3_store: S3Store, tmp_path: Path, case: str
) -> None:
    ledger = tmp_path / "ledger"
    old_ledger(ledger, [40, 10])
    before = files(ledger)
    prefix = f"refused/{uuid.uuid4().hex[:8]}"
    if case == "a wrong secret key":
        path = f"trading/tests/{uuid.uuid4().hex[:8]}/wrong"
        s3_store.put_secret(path, s3_store.access_key_id, "not-the-secret-key")
        env, expected = s3_store.env(prefix, path), "refused: SignatureDoesNotMatch"
    else:
        env = {**s3_store.env(prefix), "TRADING_AUDIT__ARCHIVE_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
        expected = "Could not connect to the endpoint URL"
    out = tmp_path / "out"
    result = compliance(*WIDE, "--out", str(out), "--ledger", str(ledger), "--retention-days", "30", env=env)
    assert result.exit_code == 1, result.output
    assert f"archive s3://{BUCKET}/{prefix}/" in result.stderr and expected in result.stderr
    assert "No report written" in result.stderr and not out.exists()
    assert files(ledger) == before
    assert "not-the-secret-key" not in result.output


def test_two_ledgers_sharing_an_s3_prefix_do_not_mix(s3_store: S3Store, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    old_ledger(first, [40, 10])
    old_ledger(second, [40, 10])  # recorded at another moment: other entries, other hashes
    env = s3_store.env(f"shared/{uuid.uuid4().hex[:8]}")
    archived = compliance(
        *WIDE, "--out", str(tmp_path / "a"), "--ledger", str(first), "--retention-days", "30", env=env
    )
    assert archived.exit_code == 0, archived.output
    before = files(second)
    # The second ledger's report finds an archive that is not its own: the chain does not reach its anchor.
    mixed = compliance(*WIDE, "--out", str(tmp_path / "b"), "--ledger", str(second), "--retention-days", "30", env=env)
    assert mixed.exit_code == 1, mixed.output
    assert "is not the ledger's anchor" in mixed.stderr and not (tmp_path / "b").exists()
    assert files(second) == before


def test_a_folder_archive_holding_another_seal_is_not_overwritten(tmp_path: Path) -> None:
    ledger, archive = tmp_path / "ledger", tmp_path / "archive"
    old_ledger(ledger, [40, 10])
    archive.mkdir()
    (archive / "segment-000001.seal").write_text("another ledger's seal\n")
    before = files(ledger)
    result = compliance(
        *WIDE,
        "--out",
        str(tmp_path / "out"),
        "--ledger",
        str(ledger),
        "--retention-days",
        "30",
        "--archive-dir",
        str(archive),
    )
    assert result.exit_code == 1, result.output
    assert f"archive {archive / 'segment-000001.seal'} already holds a different segment-000001.seal" in result.stderr
    assert files(ledger) == before and (archive / "segment-000001.seal").read_text() == "another ledger's seal\n"


LITERAL = "wJalrXUtnFEMI-literal-credential"
BAD_SETTINGS = [
    ({"TRADING_AUDIT__ARCHIVE_S3_BUCKET": ""}, "the s3 target needs TRADING_AUDIT__ARCHIVE_S3_BUCKET"),
    ({"TRADING_AUDIT__ARCHIVE_S3_BUCKET": "Not_A_Bucket"}, "TRADING_AUDIT__ARCHIVE_S3_BUCKET: String should match"),
    (
        {"TRADING_AUDIT__ARCHIVE_S3_ENDPOINT_URL": "ftp://store"},
        "TRADING_AUDIT__ARCHIVE_S3_ENDPOINT_URL: String should",
    ),
    ({"TRADING_AUDIT__ARCHIVE_S3_PREFIX": "/runs/"}, "TRADING_AUDIT__ARCHIVE_S3_PREFIX: String should match"),
    ({"TRADING_AUDIT__ARCHIVE_TARGET": "tape"}, "TRADING_AUDIT__ARCHIVE_TARGET: Input should be 'folder' or 's3'"),
    (
        {"TRADING_AUDIT__ARCHIVE_S3_SECRET_ACCESS_KEY": LITERAL},
        "TRADING_AUDIT__ARCHIVE_S3_SECRET_ACCESS_KEY must be a Vault reference",
    ),
    (
        {"TRADING_AUDIT__ARCHIVE_S3_ACCESS_KEY_ID": "vault:secret/trading/tests/nothing-here/s3#access_key_id"},
        "TRADING_AUDIT__ARCHIVE_S3_ACCESS_KEY_ID: ",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_SETTINGS, ids=[m.split(":")[0] for _, m in BAD_SETTINGS])
def test_a_bad_archive_setting_stops_the_report_naming_the_key(
    s3_store: S3Store, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    ledger = tmp_path / "ledger"
    old_ledger(ledger, [40])
    before = files(ledger)
    out = tmp_path / "out"
    result = compliance(
        *WIDE, "--out", str(out), "--ledger", str(ledger), "--retention-days", "30", env={**s3_store.env("x"), **change}
    )
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Nothing read or moved" in result.stderr
    assert LITERAL not in result.output
    assert files(ledger) == before and not out.exists()


@pytest.mark.parametrize(("change", "message"), [BAD_SETTINGS[0], BAD_SETTINGS[5]], ids=["no bucket", "literal key"])
def test_a_bad_archive_setting_stops_the_audit_service_at_start_up(
    s3_store: S3Store,
    tmp_path: Path,
    change: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The service's console script (audit-service) with the same settings: it stops before it opens anything."""
    env = {
        **s3_store.env("x"),
        **change,
        "TRADING_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "TRADING_AUDIT__LEDGER_DIR": str(tmp_path / "ledger"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        audit_service_main()
    assert stopped.value.code == 2
    printed = capsys.readouterr()
    assert message in printed.err and LITERAL not in printed.err + printed.out
    assert not (tmp_path / "ledger").exists()
