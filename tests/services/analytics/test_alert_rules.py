"""Each alert rule through the faust agents in the test context: the value crosses the threshold -> one FIRING on
analytics.alerts.v1; it clears -> one RESOLVED; in between (hysteresis, `for_s`) nothing, so no flapping."""

from __future__ import annotations

from pathlib import Path

import pytest
from trading.analytics.v1 import analytics_pb2
from trading.common.v1 import common_pb2
from trading.marketdata.v1 import marketdata_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading.signal.v1 import signal_pb2
from trading_platform.decimals import to_proto

from tests.services.analytics.helpers import (
    NS,
    T0,
    E,
    Harness,
    envelope,
    filled_order,
    order,
    order_event,
    rules,
)

FIRING, RESOLVED = analytics_pb2.ALERT_STATUS_FIRING, analytics_pb2.ALERT_STATUS_RESOLVED
BUY = common_pb2.ORDER_SIDE_BUY

RULES = rules(
    """
version: test-7
rules:
  slippage_high: {metric: arrival_slippage_bps, above: 20, clear: 10, orders: 3, severity: critical}
  fill_ratio_low: {metric: fill_ratio, below: 0.8, orders: 2}
  reject_rate_high: {metric: reject_rate, above: 0.4, clear: 0.2, orders: 2}
  data_quality_low: {metric: data_quality_score, below: 0.9, clear: 0.95, for_s: 60}
  reconciliation_mismatch: {metric: reconciliation_mismatches, above: 0}
  dead_letters_growing: {metric: dead_letters, above: 0}
  limit_utilisation_high: {metric: limit_utilisation, above: 0.9, clear: 0.85}
  model_drift: {metric: model_drift, above: 3, clear: 2}
"""
)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path, rules=RULES)


def transitions(harness: Harness, rule: str) -> list[tuple[str, int]]:
    return [(a.subject, a.status) for a in harness.sink.on("analytics.alerts.v1") if a.rule == rule]


async def test_slippage_above_x_bps_over_n_orders(harness: Harness) -> None:
    for number, slippage in enumerate((30.0, 30.0)):
        await harness.put_many(iter(filled_order(f"co-{number}", "AAPL", "100", "100", T0 + number * NS, slippage)))
    assert transitions(harness, "slippage_high") == []  # two orders: not yet N
    await harness.put_many(iter(filled_order("co-2", "AAPL", "100", "100", T0 + 2 * NS, 30.0)))
    assert transitions(harness, "slippage_high") == [("AAPL", FIRING)]
    await harness.put_many(iter(filled_order("co-3", "AAPL", "100", "100", T0 + 3 * NS, 30.0)))
    assert transitions(harness, "slippage_high") == [("AAPL", FIRING)]  # once, not once per order
    fired = harness.sink.on("analytics.alerts.v1")[0]
    assert (fired.value, fired.threshold, fired.rules_version) == (30.0, 20.0, "test-7")
    assert fired.severity == analytics_pb2.ALERT_SEVERITY_CRITICAL and fired.ends_at == 0
    assert fired.starts_at == T0 + 2 * NS + 1_000_000 and "AAPL" in fired.summary  # the third order's measure
    await harness.put_many(iter(filled_order("co-4", "AAPL", "100", "100", T0 + 4 * NS, 0.0)))  # mean 20: held
    assert transitions(harness, "slippage_high") == [("AAPL", FIRING)]
    await harness.put_many(iter(filled_order("co-5", "AAPL", "100", "100", T0 + 5 * NS, 0.0)))  # mean 10: clear
    assert transitions(harness, "slippage_high") == [("AAPL", FIRING), ("AAPL", RESOLVED)]
    resolved = harness.sink.on("analytics.alerts.v1")[-1]
    assert (resolved.starts_at, resolved.ends_at) == (fired.starts_at, T0 + 5 * NS + 1_000_000)
    assert harness.sink.latest("analytics.alerts.v1")["slippage_high|AAPL"].status == RESOLVED


async def test_fill_ratio_below_y(harness: Harness) -> None:
    for number in range(2):
        canceled = order(f"c-{number}", "MSFT", BUY, "10", filled="2", average="50")
        await harness.put("oms.events.v1", order_event(E.ORDER_EVENT_TYPE_CANCELED, canceled, T0 + number * NS))
    assert transitions(harness, "fill_ratio_low") == [("MSFT", FIRING)]
    assert harness.sink.on("analytics.alerts.v1")[-1].value == pytest.approx(0.2)
    for number in range(2):
        await harness.put_many(iter(filled_order(f"f-{number}", "MSFT", "50", "50", T0 + (5 + number) * NS, 0.0)))
    assert transitions(harness, "fill_ratio_low") == [("MSFT", FIRING), ("MSFT", RESOLVED)]


async def test_reject_rate(harness: Harness) -> None:
    for number in range(2):
        rejected = order(f"r-{number}", "AAPL", BUY, "1")
        await harness.put("oms.events.v1", order_event(E.ORDER_EVENT_TYPE_REJECTED, rejected, T0 + number * NS))
    assert transitions(harness, "reject_rate_high") == [("AAPL", FIRING)]
    await harness.put_many(iter(filled_order("f-1", "AAPL", "100", "100", T0 + 3 * NS, 0.0)))  # 0.5: held
    assert transitions(harness, "reject_rate_high") == [("AAPL", FIRING)]
    await harness.put_many(iter(filled_order("f-2", "AAPL", "100", "100", T0 + 4 * NS, 0.0)))  # 0.0: clear
    assert transitions(harness, "reject_rate_high") == [("AAPL", FIRING), ("AAPL", RESOLVED)]


def scored(score: float, ts: int) -> marketdata_pb2.DataQualityScored:
    return marketdata_pb2.DataQualityScored(
        envelope=envelope(ts, "market-data"), symbol="SPY", window_start=ts, window_end=ts + 10 * NS, score=score
    )


async def test_data_quality_below_z_for_a_duration_with_hysteresis(harness: Harness) -> None:
    await harness.put("marketdata.quality.v1", scored(0.5, T0))
    await harness.put("marketdata.quality.v1", scored(0.6, T0 + 30 * NS))
    assert transitions(harness, "data_quality_low") == []  # breached for 30 s of the 60 s it must hold
    await harness.put("marketdata.quality.v1", scored(0.92, T0 + 40 * NS))  # above Z: the wait starts over
    await harness.put("marketdata.quality.v1", scored(0.5, T0 + 50 * NS))
    await harness.put("marketdata.quality.v1", scored(0.5, T0 + 100 * NS))
    assert transitions(harness, "data_quality_low") == []
    await harness.put("marketdata.quality.v1", scored(0.5, T0 + 111 * NS))
    assert transitions(harness, "data_quality_low") == [("SPY", FIRING)]
    for offset, score in ((120, 0.91), (130, 0.89), (140, 0.93)):  # hovering at the threshold: no flapping
        await harness.put("marketdata.quality.v1", scored(score, T0 + offset * NS))
    assert transitions(harness, "data_quality_low") == [("SPY", FIRING)]
    await harness.put("marketdata.quality.v1", scored(0.99, T0 + 150 * NS))
    assert transitions(harness, "data_quality_low") == [("SPY", FIRING), ("SPY", RESOLVED)]


async def test_a_reconciliation_mismatch(harness: Harness) -> None:
    mismatch = oms_pb2.ReconciliationCompleted(
        envelope=envelope(T0), matched=False, mismatches=["AAPL: book 10, broker 8"]
    )
    await harness.put("oms.reconciliation.v1", mismatch)
    assert transitions(harness, "reconciliation_mismatch") == [("_account", FIRING)]
    await harness.put(
        "oms.reconciliation.v1", oms_pb2.ReconciliationCompleted(envelope=envelope(T0 + NS), matched=True)
    )
    assert transitions(harness, "reconciliation_mismatch") == [("_account", FIRING), ("_account", RESOLVED)]


async def test_dead_letter_growth_fires_and_resolves_when_a_window_passes_without_any(harness: Harness) -> None:
    letter = common_pb2.DeadLetter(envelope=envelope(T0 + NS, "risk"), source_topic="risk.decisions.v1")
    await harness.put("dead-letters", letter)
    await harness.put("dead-letters", letter)
    assert transitions(harness, "dead_letters_growing") == [("risk.decisions.v1", FIRING)]
    harness.now = T0 + 30 * NS
    await harness.app.tick()  # the same minute: still growing
    assert transitions(harness, "dead_letters_growing") == [("risk.decisions.v1", FIRING)]
    harness.now = T0 + 61 * NS
    await harness.app.tick()
    assert transitions(harness, "dead_letters_growing") == [
        ("risk.decisions.v1", FIRING),
        ("risk.decisions.v1", RESOLVED),
    ]


async def test_limit_utilisation_above_90_percent(harness: Harness) -> None:
    limits = risk_pb2.LimitsChanged(
        envelope=envelope(T0, "risk"),
        limits=risk_pb2.RiskLimits(max_position_notional=to_proto("1000"), max_gross_exposure=to_proto("5000")),
    )
    await harness.put("risk.limits.v1", limits)

    def position(quantity: str, ts: int) -> oms_pb2.PositionChanged:
        return oms_pb2.PositionChanged(
            envelope=envelope(ts),
            position=oms_pb2.Position(symbol="AAPL", quantity=to_proto(quantity), market_price=to_proto("95")),
        )

    await harness.put("oms.positions.v1", position("9", T0 + NS))  # 855 of 1000
    assert transitions(harness, "limit_utilisation_high") == []
    await harness.put("oms.positions.v1", position("10", T0 + 2 * NS))  # 950 of 1000
    assert transitions(harness, "limit_utilisation_high") == [("max_position_notional:AAPL", FIRING)]
    await harness.put("oms.positions.v1", position("-5", T0 + 3 * NS))  # short 475
    assert transitions(harness, "limit_utilisation_high") == [
        ("max_position_notional:AAPL", FIRING),
        ("max_position_notional:AAPL", RESOLVED),
    ]


async def test_model_drift(harness: Harness) -> None:
    def report(drift: float, ts: int) -> signal_pb2.PredictionMonitorReport:
        return signal_pb2.PredictionMonitorReport(
            envelope=envelope(ts, "signal"), model_name="trend-ppo", model_version="2", max_drift=drift
        )

    await harness.put("signal.monitoring.v1", report(4.5, T0))
    await harness.put("signal.monitoring.v1", report(2.5, T0 + NS))  # inside the hysteresis band
    await harness.put("signal.monitoring.v1", report(1.0, T0 + 2 * NS))
    assert transitions(harness, "model_drift") == [("trend-ppo:2", FIRING), ("trend-ppo:2", RESOLVED)]


async def test_the_packaged_rules_fire_on_the_platform_topics(tmp_path: Path) -> None:
    harness = Harness(tmp_path)  # services/analytics/src/analytics_service/alert_rules.yaml as shipped
    await harness.put("oms.reconciliation.v1", oms_pb2.ReconciliationCompleted(envelope=envelope(T0), matched=False))
    (alert,) = harness.sink.on("analytics.alerts.v1")
    assert (alert.rule, alert.status, alert.rules_version) == ("reconciliation_mismatch", FIRING, "2026-12-02.1")


async def test_the_alert_state_survives_in_its_table(tmp_path: Path) -> None:
    """A FIRING is not repeated by the next breach: the state is the faust table's, not the agent's."""
    harness = Harness(tmp_path, rules=RULES)
    mismatch = oms_pb2.ReconciliationCompleted(envelope=envelope(T0), matched=False)
    await harness.put("oms.reconciliation.v1", mismatch)
    await harness.put("oms.reconciliation.v1", mismatch)
    assert transitions(harness, "reconciliation_mismatch") == [("_account", FIRING)]
    assert harness.app.tables["alerts"]["reconciliation_mismatch|_account"]["phase"] == "firing"
