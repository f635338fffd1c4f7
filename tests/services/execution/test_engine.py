"""Trade updates to execution reports: duplicates and stale updates dropped, catch-up after a gap, quality."""

from __future__ import annotations

from decimal import Decimal

from execution_service.engine import ExecutionEngine, InFlight
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2 as E


def update(event: str, filled: str, qty: str = "0", price: str = "100", execution_id: str = "") -> dict:  # type: ignore[type-arg]
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
            "status": "filled",
        },
    }


def test_duplicates_and_out_of_order_fills_are_dropped() -> None:
    engine = ExecutionEngine()
    assert engine.report_for(update("new", "0"), 1).report_type == E.EXECUTION_REPORT_TYPE_NEW  # type: ignore[union-attr]
    first = engine.report_for(update("partial_fill", "4", "4"), 2)
    assert first is not None and first.fill_id == "x-partial_fill-4"
    assert engine.report_for(update("partial_fill", "4", "4"), 3) is None  # the same update twice
    full = engine.report_for(update("fill", "10", "6"), 4)
    assert full is not None and full.filled_quantity.value == "10"
    assert engine.report_for(update("partial_fill", "7", "3", execution_id="late"), 5) is None  # behind cumulative


def test_catch_up_reports_the_fills_nobody_heard() -> None:
    engine = ExecutionEngine()
    said = engine.report_for(update("partial_fill", "4", "4", "100"), 1)
    assert said is not None
    engine.remember(said)
    order = update("fill", "10", price="101")["order"]  # the broker filled the rest at a new average
    missed = engine.catch_up_update(order)
    assert missed is not None and missed["event"] == "fill" and Decimal(missed["qty"]) == 6
    # 4 @ 100 + 6 @ p = 10 @ 101  =>  p = 101.6667
    assert Decimal(missed["price"]) == Decimal("101.6667")
    report = engine.report_for(missed, 2)
    assert report is not None
    engine.remember(report)
    assert engine.catch_up_update(order) is None  # nothing left to say


def test_quality_measures_latency_slippage_and_fill_ratio() -> None:
    engine = ExecutionEngine()
    engine.inflight["co-1"] = InFlight("co-1", "AAPL", common_pb2.ORDER_SIDE_BUY, Decimal(10), Decimal(100), 1_000)
    engine.report_for(update("new", "0"), 2_000)
    engine.report_for(update("fill", "10", "10", "100.05"), 5_000)
    quality = engine.quality("co-1")
    assert quality is not None
    assert (quality.submit_to_accept_ns, quality.submit_to_last_fill_ns) == (1_000, 4_000)
    assert quality.fill_ratio == 1.0 and abs(quality.slippage_bps - 5.0) < 1e-9
