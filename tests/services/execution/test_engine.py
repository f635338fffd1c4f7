"""Trade updates to execution reports: every fill once whatever the order of arrival, catch-up after a gap, quality."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from execution_service.engine import ExecutionEngine, InFlight
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2 as E


def update(
    event: str, filled: str, qty: str = "0", price: str = "100", execution_id: str = "", status: str = "filled"
) -> dict[str, Any]:
    return {
        "event": event,
        "execution_id": execution_id or f"x-{event}-{filled}",
        "qty": qty,
        "price": price,
        "order": {
            "id": "b-1",
            "client_order_id": "co-1",
            "symbol": "AAPL",
            "side": "buy",
            "qty": "10",
            "filled_qty": filled,
            "filled_avg_price": price,
            "status": status,
        },
    }


def said(engine: ExecutionEngine, trade_update: dict[str, Any], now_ns: int = 1) -> E.ExecutionReport | None:
    """What the app does with an update: decide the report, publish it, remember it."""
    report = engine.report_for(trade_update, now_ns)
    if report is not None:
        engine.remember(report)
    return report


def test_duplicates_are_dropped_and_a_fill_the_broker_has_no_room_for_is_not_reported() -> None:
    engine = ExecutionEngine()
    assert said(engine, update("new", "0")).report_type == E.EXECUTION_REPORT_TYPE_NEW  # type: ignore[union-attr]
    assert said(engine, update("new", "0")) is None  # the same status twice
    first = said(engine, update("partial_fill", "4", "4"))
    assert first is not None and first.fill_id == "x-partial_fill-4"
    assert said(engine, update("partial_fill", "4", "4")) is None  # the same update twice
    full = said(engine, update("fill", "10", "6"))
    assert full is not None and full.filled_quantity.value == "10"
    # 10 of 10 are reported: a further "fill" would make more than the broker filled.
    assert said(engine, update("partial_fill", "7", "3", execution_id="late")) is None


def test_a_fill_that_arrives_out_of_order_is_reported() -> None:
    """The final fill (cumulative 10) comes before the partial (cumulative 4): the partial is a fill of its own,
    not a stale repeat, so it is reported (the cumulative quantity did not grow, but nothing was said of it)."""
    engine = ExecutionEngine()
    final = said(engine, update("fill", "10", "6", "101", execution_id="x2"))
    early = said(engine, update("partial_fill", "4", "4", "100", execution_id="x1", status="partially_filled"))
    assert final is not None and early is not None
    assert [(r.fill_id, r.last_quantity.value) for r in (final, early)] == [("x2", "6"), ("x1", "4")]


def test_catch_up_reports_the_fills_nobody_heard() -> None:
    engine = ExecutionEngine()
    assert said(engine, update("partial_fill", "4", "4", "100")) is not None
    order = update("fill", "10", price="101")["order"]  # the broker filled the rest at a new average
    [missed] = engine.catch_up_updates(order)
    assert missed["event"] == "fill" and Decimal(missed["qty"]) == 6
    # 4 @ 100 + 6 @ p = 10 @ 101  =>  p = 101.6667
    assert Decimal(missed["price"]) == Decimal("101.6667")
    assert said(engine, missed) is not None
    assert engine.catch_up_updates(order) == []  # nothing left to say


def test_catch_up_reports_a_partial_fill_and_the_cancel_after_it() -> None:
    """Both happened during the gap: the order must not stay open downstream."""
    engine = ExecutionEngine()
    assert said(engine, update("new", "0")) is not None
    order = update("canceled", "4", price="100", status="canceled")["order"]
    missed = engine.catch_up_updates(order)
    assert [(m["event"], m.get("qty")) for m in missed] == [("partial_fill", "4"), ("canceled", None)]
    reports = [said(engine, m) for m in missed]
    assert [r.report_type for r in reports if r is not None] == [
        E.EXECUTION_REPORT_TYPE_PARTIAL_FILL,
        E.EXECUTION_REPORT_TYPE_CANCELED,
    ]
    assert engine.catch_up_updates(order) == []


def test_a_fill_a_catch_up_reported_is_not_reported_again_when_its_update_arrives_late() -> None:
    engine = ExecutionEngine()
    late = update("partial_fill", "4", "4", execution_id="x1", status="partially_filled")
    [missed] = engine.catch_up_updates(update("partial_fill", "4", status="partially_filled")["order"])
    assert said(engine, missed) is not None
    assert said(engine, late) is None  # its 4 are the 4 the catch-up reported


def test_what_was_reported_before_a_restart_is_not_reported_again() -> None:
    before = ExecutionEngine()
    reports = [said(before, update("partial_fill", "4", "4", execution_id="x1", status="partially_filled"))]
    after = ExecutionEngine()
    for report in reports:
        assert report is not None
        after.remember(report)  # folded from execution.reports.v1 at start-up
    assert said(after, update("partial_fill", "4", "4", execution_id="x1", status="partially_filled")) is None
    assert after.catch_up_updates(update("partial_fill", "4", status="partially_filled")["order"]) == []


def test_quality_measures_latency_slippage_and_fill_ratio() -> None:
    engine = ExecutionEngine()
    engine.inflight["co-1"] = InFlight("co-1", "AAPL", common_pb2.ORDER_SIDE_BUY, Decimal(10), Decimal(100), 1_000)
    said(engine, update("new", "0"), 2_000)
    said(engine, update("fill", "10", "10", "100.05"), 5_000)
    quality = engine.quality("co-1")
    assert quality is not None
    assert (quality.submit_to_accept_ns, quality.submit_to_last_fill_ns) == (1_000, 4_000)
    assert quality.fill_ratio == 1.0 and abs(quality.slippage_bps - 5.0) < 1e-9
