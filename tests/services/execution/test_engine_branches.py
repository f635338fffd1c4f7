"""Execution's engine, the remaining rules: a submit command that differs from its risk approval is named, an
ambiguous submit is remembered as never to be sent again, updates the platform has no report for say nothing, and
quality is measured only for a finished order of this instance (no fill: no slippage; a sell's slippage is signed
for the seller). Each test asserts the difference named, the report, or the measure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from execution_service.engine import ExecutionEngine, InFlight, approval_mismatch
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2 as E
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading_platform.decimals import to_proto

BUY, SELL = common_pb2.ORDER_SIDE_BUY, common_pb2.ORDER_SIDE_SELL


def approval(symbol: str = "AAPL", side: int = BUY, quantity: str | None = "10") -> risk_pb2.RiskDecision:
    return risk_pb2.RiskDecision(
        client_order_id="co-1", approved=True, symbol=symbol, side=side, quantity=to_proto(quantity)
    )


def command(symbol: str = "AAPL", side: int = BUY, quantity: str = "10") -> oms_pb2.SubmitOrder:
    return oms_pb2.SubmitOrder(client_order_id="co-1", symbol=symbol, side=side, quantity=to_proto(quantity))


def update(event: str, side: str = "buy", filled: str = "0", price: str = "0", qty: str = "0") -> dict[str, Any]:
    return {
        "event": event,
        "execution_id": f"x-{event}-{filled}",
        "qty": qty,
        "price": price,
        "order": {
            "id": "b-1",
            "client_order_id": "co-1",
            "symbol": "AAPL",
            "side": side,
            "qty": "10",
            "filled_qty": filled,
            "filled_avg_price": price,
        },
    }


# -- the command against its approval ---------------------------------------------------------------------------------
def test_the_order_risk_approved_matches_its_approval() -> None:
    assert approval_mismatch(approval(), command()) is None


def test_every_difference_from_the_approval_is_named() -> None:
    problem = approval_mismatch(approval(), command(symbol="MSFT", side=SELL, quantity="11"))
    assert problem == (
        "the command differs from its risk approval: symbol 'MSFT', approved 'AAPL'; "
        "side ORDER_SIDE_SELL, approved ORDER_SIDE_BUY; quantity 11, approved 10"
    )


def test_an_approval_that_does_not_say_the_quantity_matches_no_command() -> None:
    problem = approval_mismatch(approval(quantity=None), command())
    assert problem is not None and "quantity 10, approved None" in problem


# -- reports ----------------------------------------------------------------------------------------------------------
def test_an_unresolved_submit_is_remembered_as_such_and_says_nothing_about_fills() -> None:
    engine = ExecutionEngine()
    engine.remember(E.ExecutionReport(client_order_id="co-1", refusal_code=E.REFUSAL_CODE_UNRESOLVED))
    assert engine.unresolved == {"co-1"}
    assert "co-1" not in engine.said  # no report type, no fill was recorded for it


def test_an_update_the_platform_has_no_report_for_says_nothing() -> None:
    engine = ExecutionEngine()
    assert engine.report_for(update("calculated"), 1) is None
    assert engine.report_for(update("order_cancel_rejected"), 1) is None
    assert engine.report_for(update("new"), 1) is not None  # the same order's known events are reported


# -- quality ----------------------------------------------------------------------------------------------------------
def in_flight(side: int, arrival: str = "100") -> ExecutionEngine:
    engine = ExecutionEngine()
    engine.inflight["co-1"] = InFlight("co-1", "AAPL", side, Decimal(10), Decimal(arrival), submitted_ns=1_000)
    return engine


def test_no_quality_for_an_order_not_sent_here_or_not_finished() -> None:
    engine = in_flight(BUY)
    assert engine.quality("other") is None
    engine.report_for(update("new"), 2_000)
    assert engine.quality("co-1") is None  # accepted, still working
    assert "co-1" in engine.inflight


def test_an_order_canceled_unfilled_has_no_slippage_and_a_zero_fill_ratio() -> None:
    engine = in_flight(BUY)
    engine.report_for(update("new"), 2_000)
    engine.report_for(update("canceled"), 5_000)
    measured = engine.quality("co-1")
    assert measured is not None
    assert measured.submit_to_accept_ns == 1_000 and measured.submit_to_first_fill_ns == 0
    assert measured.slippage_bps == 0.0 and measured.fill_ratio == 0.0
    assert engine.quality("co-1") is None  # measured once


def test_a_sell_filled_above_its_arrival_price_has_negative_slippage() -> None:
    engine = in_flight(SELL)
    engine.report_for(update("fill", side="sell", filled="10", price="101", qty="10"), 3_000)
    measured = engine.quality("co-1")
    assert measured is not None
    assert measured.slippage_bps == -100.0 and measured.fill_ratio == 1.0
    assert measured.submit_to_accept_ns == 0 and measured.submit_to_last_fill_ns == 2_000
