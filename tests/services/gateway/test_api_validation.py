"""The API's building blocks alone: signed cursors, time ranges, the tables' paging and eviction, the fan-out's
bounded queues, and the JSON the records become (decimals as strings, enums by name, times as RFC 3339 + ns)."""

from __future__ import annotations

import asyncio

import pytest
from gateway_service.problems import Problem
from gateway_service.readmodel import DROPPED, Cursors, Fanout, InvalidCursor
from gateway_service.readmodel.convert import model_for, parse_rfc3339, rfc3339, to_json
from gateway_service.readmodel.tables import Table
from gateway_service.routes.api_common import time_range
from hypothesis import given, settings
from hypothesis import strategies as st
from trading.analytics.v1 import analytics_pb2
from trading.oms.v1 import oms_pb2
from trading_platform.decimals import to_proto

NS = 1_000_000_000
NOW = 1_796_000_000 * NS
DAY_S = 24 * 3600


def test_a_cursor_round_trips_and_refuses_tampering_other_lists_and_other_keys() -> None:
    cursors = Cursors(b"k" * 32)
    scope = cursors.scope("/api/v1/orders", {"symbol": "AAPL", "from": None})
    cursor = cursors.encode((NOW, "co-1"), scope)
    assert cursors.decode(cursor, scope) == (NOW, "co-1")
    body, mac = cursor.split(".")
    forged = cursors.encode((NOW, "co-2"), scope).split(".")[0] + "." + mac
    other_scope = cursors.scope("/api/v1/orders", {"symbol": "MSFT"})
    for bad in (forged, body, "", "x" * 600, cursor + "x"):
        with pytest.raises(InvalidCursor):
            cursors.decode(bad, scope)
    with pytest.raises(InvalidCursor, match="another list"):
        cursors.decode(cursor, other_scope)
    with pytest.raises(InvalidCursor):
        Cursors(b"j" * 32).decode(cursor, scope)  # another process (or before a restart)
    # None-valued filters do not change the scope: `?symbol=AAPL` is the same list with or without `from` unset.
    assert scope == cursors.scope("/api/v1/orders", {"symbol": "AAPL"})


def field_of(call: object) -> str:
    with pytest.raises(Problem) as refused:
        call()  # type: ignore[operator]
    assert refused.value.status == 400
    return str(refused.value.field)


def test_time_ranges_are_rfc3339_ordered_and_capped() -> None:
    assert time_range(None, None, NOW, DAY_S) == (None, None)
    start, end = time_range("2026-12-01T00:00:00Z", "2026-12-01T12:00:00+01:00", NOW, DAY_S)
    assert end is not None and start is not None and end - start == 11 * 3600 * NS
    assert time_range("2026-12-01", None, parse_rfc3339("2026-12-01T10:00:00Z"), DAY_S)[0] == parse_rfc3339(
        "2026-12-01T00:00:00Z"
    )
    assert field_of(lambda: time_range("soon", None, NOW, DAY_S)) == "from"
    assert field_of(lambda: time_range(None, "2026-12-01T10:00:00", NOW, DAY_S)) == "to"  # no offset
    assert field_of(lambda: time_range("2026-12-02", "2026-12-01", NOW, DAY_S)) == "from"
    assert field_of(lambda: time_range("2026-12-01", "2026-12-01", NOW, DAY_S)) == "from"
    assert field_of(lambda: time_range("2026-11-01", "2026-12-01", NOW, DAY_S)) == "to"
    assert field_of(lambda: time_range(rfc3339(NOW - 2 * DAY_S * NS), None, NOW, DAY_S)) == "from"


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(0, 50), min_size=0, max_size=40),
    limit=st.integers(1, 7),
    wanted=st.sampled_from([None, 0, 1]),
)
def test_paging_walks_every_matching_row_once_newest_first(times: list[int], limit: int, wanted: int | None) -> None:
    table: Table[dict[str, int]] = Table(cap=1000)
    for i, ts in enumerate(times):
        table.put(f"k{i:03d}", ts, {"i": i, "parity": i % 2})

    def where(row: dict[str, int]) -> bool:
        return wanted is None or row["parity"] == wanted

    walked: list[int] = []
    after = None
    while True:
        page = table.page(limit, after=after, where=where)
        assert len(page.items) <= limit
        walked += [row["i"] for row in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    expected = sorted((i for i in range(len(times)) if where({"parity": i % 2})), key=lambda i: (times[i], i))
    assert walked == list(reversed(expected))


def test_a_table_keeps_its_cap_evicting_the_oldest_and_a_put_again_moves_a_row() -> None:
    evicted: list[str] = []
    table: Table[str] = Table(cap=3, on_evict=lambda key, _: evicted.append(key))
    for i, ts in enumerate((10, 20, 30)):
        table.put(f"k{i}", ts, f"v{i}")
    table.put("k0", 40, "v0 again")  # updated: now the newest
    table.put("k3", 50, "v3")
    assert evicted == ["k1"] and len(table) == 3
    assert list(table.values()) == ["v2", "v0 again", "v3"]
    window = table.page(10, from_ns=30, to_ns=50)
    assert window.items == ["v0 again", "v2"]


async def test_a_full_queue_drops_its_subscriber_with_a_final_notice_and_spares_the_others() -> None:
    fanout = Fanout(queue_size=3)
    slow, fast = fanout.subscribe(["orders"]), fanout.subscribe(["orders", "fills"])
    received = []
    for n in range(5):
        fanout.publish("orders", {"n": n})
        fanout.publish("positions", {"n": n})  # nobody's channel
        async for channel, data in fast:
            received.append((channel, data["n"], fast.last_seq))
            break
    assert [n for _, n, _ in received] == [0, 1, 2, 3, 4]
    assert [seq for _, _, seq in received] == [1, 3, 5, 7, 9]
    assert slow.dropped and fanout.dropped == 1
    updates = [update async for update in slow]
    assert [channel for channel, _ in updates] == [DROPPED]
    assert updates[0][1]["discarded"] == 2
    fanout.close()
    assert await asyncio.wait_for(_drain(fast), 1) == []


async def _drain(subscription: object) -> list[object]:
    return [update async for update in subscription]  # type: ignore[attr-defined]


def test_records_become_json_with_decimal_strings_enum_names_and_times() -> None:
    order = oms_pb2.Order(
        client_order_id="co-1",
        status=oms_pb2.ORDER_STATUS_PARTIALLY_FILLED,
        quantity=to_proto("10.50"),
        created_at=parse_rfc3339("2026-12-01T14:30:00.25Z"),
    )
    data = to_json(order)
    assert data["status"] == "PARTIALLY_FILLED" and data["side"] == "UNSPECIFIED"
    assert data["quantity"] == "10.5" and data["limit_price"] is None
    assert data["created_at"] == "2026-12-01T14:30:00.250000Z" and data["created_at_ns"] == order.created_at
    assert data["updated_at"] is None and data["updated_at_ns"] == 0
    model_for(oms_pb2.Order).model_validate(data)  # the OpenAPI model describes exactly this JSON
    window = analytics_pb2.ExecutionQualityWindow(symbol="AAPL", arrival_slippage_bps=float("inf"))
    window.rejects_by_reason["INVALID_ORDER"] = 2
    window_json = to_json(window)
    assert window_json["arrival_slippage_bps"] is None and window_json["rejects_by_reason"] == {"INVALID_ORDER": 2}
    model_for(analytics_pb2.ExecutionQualityWindow).model_validate(window_json)
    with pytest.raises(ValueError):
        model_for(oms_pb2.Order).model_validate({**data, "extra": 1})
