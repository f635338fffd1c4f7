"""The analytics tables, through the faust agents in faust's test context: each input record is decoded, folded
into its windowed table and the row's latest value published as the analytics.* topics carry it."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from analytics_service import tca
from analytics_service.tca import DECISION_KEEP_S
from hypothesis import given
from hypothesis import strategies as st
from trading.analytics.v1 import analytics_pb2
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.marketdata.v1 import marketdata_pb2
from trading_platform.decimals import from_proto, to_proto
from trading_platform.envelope import new_envelope

from tests.services.analytics.helpers import (
    NS,
    T0,
    E,
    Harness,
    envelope,
    fill_event,
    filled_order,
    order,
    order_event,
    quality_measure,
    signal,
)

BUY, SELL = common_pb2.ORDER_SIDE_BUY, common_pb2.ORDER_SIDE_SELL
MINUTE, DAY = 60 * NS, 86400 * NS


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def money(value: common_pb2.Decimal) -> Decimal | None:
    return from_proto(value)


async def test_tca_per_symbol_and_window(harness: Harness) -> None:
    await harness.put_many(iter(filled_order("co-1", "AAPL", "100", "100.10", T0 + 5 * NS, slippage=8.0)))
    await harness.put_many(iter(filled_order("co-2", "AAPL", "100", "100.10", T0 + 10 * NS, slippage=12.0)))
    rejected = order("co-3", "AAPL", BUY, "5")
    await harness.put("oms.events.v1", order_event(E.ORDER_EVENT_TYPE_SUBMITTED, rejected, T0 + 11 * NS))
    await harness.put(
        "execution.reports.v1",
        execution_pb2.ExecutionReport(
            envelope=envelope(T0 + 12 * NS, "execution"),
            report_type=execution_pb2.EXECUTION_REPORT_TYPE_REJECTED,
            client_order_id="co-3",
            symbol="AAPL",
            refusal_code=execution_pb2.REFUSAL_CODE_BROKER_REJECTED,
        ),
    )
    await harness.put("oms.events.v1", order_event(E.ORDER_EVENT_TYPE_REJECTED, rejected, T0 + 12 * NS))
    canceled = order("co-4", "MSFT", SELL, "4")
    await harness.put(
        "oms.events.v1", order_event(E.ORDER_EVENT_TYPE_CANCELED, canceled, T0 + 70 * NS, reason="operator")
    )

    rows = harness.sink.latest("analytics.execution.v1")
    minute = rows[f"AAPL|{T0}|{T0 + MINUTE}"]
    assert isinstance(minute, analytics_pb2.ExecutionQualityWindow)
    assert (minute.window_start, minute.window_end) == (T0, T0 + MINUTE)
    assert (minute.orders, minute.filled_orders, minute.rejected_orders, minute.canceled_orders) == (3, 2, 1, 0)
    assert minute.arrival_slippage_bps == pytest.approx(10.0)  # execution's measures, 8 and 12
    assert minute.implementation_shortfall_bps == pytest.approx(10.0)  # 100.10 against the decision price 100
    assert minute.fill_ratio == pytest.approx(2 / 3)
    assert minute.reject_rate == pytest.approx(1 / 3)
    assert dict(minute.rejects_by_reason) == {"broker_rejected": 1}
    assert minute.decision_to_submit_p50_ms == pytest.approx(20.0)
    assert minute.submit_to_accept_p99_ms == pytest.approx(5.0)
    assert minute.submit_to_fill_p50_ms == pytest.approx(20.0)
    assert money(minute.filled_notional) == Decimal("2002.0")
    # The MSFT cancel is in the next minute, and the day window and the account row hold everything.
    msft = rows[f"MSFT|{T0 + MINUTE}|{T0 + 2 * MINUTE}"]
    assert (msft.orders, msft.canceled_orders, dict(msft.cancels_by_reason)) == (1, 1, {"operator": 1})
    day_start = T0 - T0 % DAY
    account_day = rows[f"_all|{day_start}|{day_start + DAY}"]
    assert (account_day.window_end - account_day.window_start, account_day.orders) == (DAY, 4)
    assert account_day.cancel_rate == pytest.approx(0.25)


async def test_a_measure_arriving_after_the_terminal_event_lands_in_the_same_window(harness: Harness) -> None:
    records = filled_order("co-1", "AAPL", "100", "100.20", T0 + 59 * NS, slippage=15.0)
    measure = records.pop()  # the measure comes after the next minute has begun
    await harness.put_many(iter(records))
    assert harness.sink.latest("analytics.execution.v1")[f"AAPL|{T0}|{T0 + MINUTE}"].arrival_slippage_bps == 0.0
    late = quality_measure("co-1", "AAPL", 15.0, T0 + 65 * NS)
    assert late.client_order_id == measure[1].client_order_id
    await harness.put("execution.quality.v1", late)
    rows = harness.sink.latest("analytics.execution.v1")
    assert rows[f"AAPL|{T0}|{T0 + MINUTE}"].arrival_slippage_bps == pytest.approx(15.0)
    assert f"AAPL|{T0 + MINUTE}|{T0 + 2 * MINUTE}" not in rows


async def test_pnl_by_day_realized_from_fills_and_unrealized_at_the_mark(harness: Harness) -> None:
    ts = 1_796_140_000 * NS  # 2026-12-01 15:46:40 UTC = 10:46:40 in New York
    bought = order("co-1", "AAPL", BUY, "10", filled="10", average="100")
    await harness.put("oms.events.v1", fill_event(bought, "f-1", "10", "100", ts))
    await harness.put("oms.events.v1", fill_event(bought, "f-1", "10", "100", ts))  # redelivered: counted once
    sold = order("co-2", "AAPL", SELL, "4", filled="4", average="103.5")
    await harness.put("oms.events.v1", fill_event(sold, "f-2", "4", "103.5", ts + NS))
    bar = marketdata_pb2.Bar(symbol="AAPL", interval_seconds=60, close=101.25)
    bar.envelope.CopyFrom(new_envelope("market-data", ts_event=ts + 2 * NS))
    bar.envelope.ts_init = ts + 2 * NS  # a mark re-values the day the bar was made (a replay's bars are old)
    await harness.put("marketdata.bars.v1", bar)

    rows = harness.sink.latest("analytics.pnl.v1")
    aapl = rows["2026-12-01|AAPL"]
    assert isinstance(aapl, analytics_pb2.PnlDay)
    assert money(aapl.realized) == Decimal("14.0")  # 4 x (103.5 - 100)
    assert money(aapl.unrealized) == Decimal("7.5")  # 6 left x (101.25 - 100)
    assert money(aapl.position) == Decimal(6)
    assert aapl.fills == 2
    assert money(aapl.traded_notional) == Decimal("1414.0")
    account = rows["2026-12-01|_all"]
    assert (money(account.realized), money(account.unrealized)) == (Decimal("14.0"), Decimal("7.5"))
    assert aapl.realized.value == "14"  # exact decimal strings, never floats


async def test_pnl_a_position_that_flips_side_reopens_at_the_fill_price(harness: Harness) -> None:
    ts = 1_796_140_000 * NS
    await harness.put("oms.events.v1", fill_event(order("a", "MSFT", BUY, "5"), "f-1", "5", "50", ts))
    await harness.put("oms.events.v1", fill_event(order("b", "MSFT", SELL, "8"), "f-2", "8", "52", ts + NS))
    row = harness.sink.latest("analytics.pnl.v1")["2026-12-01|MSFT"]
    assert money(row.realized) == Decimal(10)  # 5 x (52 - 50)
    assert money(row.position) == Decimal(-3)  # short 3 opened at 52, marked at 52
    assert money(row.unrealized) == Decimal(0)


async def test_data_quality_windows_scores_gaps_and_failovers(harness: Harness) -> None:
    for offset, score, rejected in ((0, 1.0, 0), (20, 0.8, 2)):
        scored = marketdata_pb2.DataQualityScored(
            envelope=envelope(T0 + offset * NS, "market-data"),
            symbol="AAPL",
            window_start=T0 + offset * NS,
            window_end=T0 + (offset + 20) * NS,
            score=score,
            records_accepted=10,
            records_rejected=rejected,
            rejects_by_reason={"price_jump": rejected} if rejected else {},
        )
        await harness.put("marketdata.quality.v1", scored)
    for minute in (0, 1, 4):  # bars at :00, :01 and :04 of a minute series: two bars missing
        bar = marketdata_pb2.Bar(symbol="AAPL", interval_seconds=1, close=100.0)
        bar.envelope.CopyFrom(new_envelope("market-data", ts_event=T0 + (30 + minute) * NS))
        await harness.put("marketdata.bars.v1", bar)
    switched = marketdata_pb2.DataSourceSwitched(envelope=envelope(T0 + 40 * NS, "market-data"), reason="stale")
    await harness.put("marketdata.sources.v1", switched)

    rows = harness.sink.latest("analytics.quality.v1")
    aapl = rows[f"AAPL|{T0}|{T0 + MINUTE}"]
    assert isinstance(aapl, analytics_pb2.DataQualityWindow)
    assert aapl.score_mean == pytest.approx(0.9)
    assert aapl.score_min == pytest.approx(0.8)
    assert (aapl.records_accepted, aapl.records_rejected, dict(aapl.rejects_by_reason)) == (20, 2, {"price_jump": 2})
    assert aapl.gaps == 2
    assert rows[f"_all|{T0}|{T0 + MINUTE}"].failovers == 1


async def test_a_malformed_record_is_dead_lettered_and_the_stream_goes_on(harness: Harness) -> None:
    await harness.put("oms.events.v1", b"\xff\x00 not an OrderEvent", key="co-bad")
    no_envelope = order_event(E.ORDER_EVENT_TYPE_FILLED, order("co-x", "AAPL", BUY, "1"), T0)
    no_envelope.ClearField("envelope")
    await harness.put("oms.events.v1", no_envelope)
    await harness.put_many(iter(filled_order("co-1", "AAPL", "100", "100", T0 + NS, slippage=0.0)))

    assert [(topic, letter.reason_code) for topic, letter in harness.sink.dead_letters] == [
        ("oms.events.v1", "decode_error"),
        ("oms.events.v1", "invalid_envelope"),
    ]
    letter = harness.sink.dead_letters[0][1]
    assert letter.key == b"co-bad" and letter.value == b"\xff\x00 not an OrderEvent"
    assert "OrderEvent" in letter.reason
    # the next one folded
    assert harness.sink.latest("analytics.execution.v1")[f"AAPL|{T0}|{T0 + MINUTE}"].filled_orders == 1


async def test_dead_letters_per_topic_and_window(harness: Harness) -> None:
    for offset, reason in ((1, "decode_error"), (2, "decode_error"), (3, "unknown_schema_version")):
        letter = common_pb2.DeadLetter(
            envelope=envelope(T0 + offset * NS, "risk"),
            source_topic="oms.events.v1",
            reason_code=reason,
        )
        await harness.put("dead-letters", letter)
    shadow = common_pb2.DeadLetter(
        envelope=envelope(T0 + 4 * NS, "execution"), source_topic="shadow.oms.commands.v1", reason_code="decode_error"
    )
    await harness.put("dead-letters", shadow)
    rows = harness.sink.latest("analytics.deadletters.v1")
    events = rows[f"oms.events.v1|{T0}|{T0 + MINUTE}"]
    assert isinstance(events, analytics_pb2.DeadLetterWindow)
    assert (events.count, events.total) == (3, 3)
    assert dict(events.by_reason) == {"decode_error": 2, "unknown_schema_version": 1}
    assert rows[f"oms.commands.v1|{T0}|{T0 + MINUTE}"].count == 1


async def test_old_windows_leave_the_tables(tmp_path: Path) -> None:
    harness = Harness(tmp_path, windows_s=(60,), window_keep_s=120)
    await harness.put_many(iter(filled_order("co-1", "AAPL", "100", "100", T0 + NS, slippage=0.0)))
    assert f"AAPL|{T0}|{T0 + MINUTE}" in harness.app.tables["tca"]
    harness.now = T0 + 60 * NS + 119 * NS
    await harness.app.tick()
    assert f"AAPL|{T0}|{T0 + MINUTE}" in harness.app.tables["tca"]
    harness.now = T0 + 60 * NS + 121 * NS
    await harness.app.tick()
    assert f"AAPL|{T0}|{T0 + MINUTE}" not in harness.app.tables["tca"]
    assert "co-1" not in harness.app.tables["orders"]  # ended and measured: its rows hold what it contributed


def test_money_is_exact() -> None:
    assert to_proto(Decimal("0.1") + Decimal("0.2")).value == "0.3"


class RefusingFirst:
    """A sink the bus refuses `refusals` times first (a broker away), then takes everything."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.rows: list[str] = []

    async def publish(self, topic: str, message: object, key: str) -> None:
        if self.refusals:
            self.refusals -= 1
            raise ConnectionError("broker away")
        self.rows.append(key)

    async def publish_dead_letter(self, dead_letter: object, source_topic: str) -> None:
        raise AssertionError("nothing here is a dead letter")


async def test_a_refused_publish_is_retried_and_health_says_so_meanwhile(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    sink = RefusingFirst(refusals=3)
    harness.app.sink = sink
    filled = fill_event(order("co-1", "AAPL", BUY, "1", filled="1", average="100"), "f-1", "1", "100", T0 + NS)
    async with harness.app.agents["oms.events.v1"].test_context() as agent:
        await agent.put(filled.SerializeToString(), key=b"co-1")
        while harness.app.failing is None:
            await asyncio.sleep(0.01)
        assert not await harness.app.healthy()
        assert "broker away" in harness.app.last_error
        async with asyncio.timeout(30):
            while f"AAPL|{T0}|{T0 + MINUTE}" not in sink.rows:
                await asyncio.sleep(0.05)
    assert await harness.app.healthy()
    assert sink.rows.count(f"AAPL|{T0}|{T0 + MINUTE}") == 1  # the refused row went out once the bus took it again, once


async def test_decisions_not_linked_to_an_order_leave_the_signals_table(harness: Harness) -> None:
    await harness.put("signal.signals.v1", signal("AAPL", "100", T0))
    assert len(harness.app.tables["signals"]) == 1
    harness.now = T0 + (DECISION_KEEP_S - 1) * NS
    await harness.app.tick()
    assert len(harness.app.tables["signals"]) == 1
    harness.now = T0 + (DECISION_KEEP_S + 1) * NS
    await harness.app.tick()
    assert len(harness.app.tables["signals"]) == 0


async def test_a_window_row_stays_bounded_however_many_orders_it_sees(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tca, "LATENCY_SAMPLES", 3)
    for number in range(5):
        ts = T0 + (number + 1) * NS
        records = filled_order(f"co-{number}", "AAPL", "100", "100", ts, slippage=float(number))
        records[-1] = (
            "execution.quality.v1",
            quality_measure(f"co-{number}", "AAPL", float(number), ts, accept_ms=number),
        )
        await harness.put_many(iter(records))
    row = harness.app.tables["tca"][f"AAPL|{T0}|{T0 + MINUTE}"]
    assert row["submit_to_accept"] == [2, 3, 4]  # the latest three orders' latencies
    assert row["slippage"] == [10.0, 5]  # the mean stays exact: sum and count
    published = harness.sink.latest("analytics.execution.v1")[f"AAPL|{T0}|{T0 + MINUTE}"]
    assert published.orders == 5 and published.arrival_slippage_bps == pytest.approx(2.0)
    assert published.submit_to_accept_p50_ms == pytest.approx(3.0)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=300))
def test_latency_percentiles_are_numpys_linear_percentiles(values: list[float]) -> None:
    p50, p99 = tca._percentiles(values)
    assert p50 == pytest.approx(float(np.percentile(values, 50)), rel=1e-9, abs=1e-9)
    assert p99 == pytest.approx(float(np.percentile(values, 99)), rel=1e-9, abs=1e-9)
