"""The REST reads against a started gateway whose read model consumes the real broker: each route returns what was
published (an order's lineage from its signal to its fill), lists page through every item once with signed cursors,
time ranges are checked, and callers without a token are refused."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import hvac
import pytest
from trading.analytics.v1 import analytics_pb2
from trading.deploy.v1 import deploy_pb2
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading.signal.v1 import signal_pb2
from trading_platform.decimals import to_proto
from trading_platform.envelope import new_envelope

from tests.services.gateway.readmodel_helpers import (
    Api,
    OrderPath,
    alert,
    api_gateway,
    start_of_day,
    wait_until,
)

pytestmark = pytest.mark.integration
NS = 1_000_000_000


@pytest.fixture
async def api(
    make_settings: Any, vault_root: hvac.Client, kafka_bootstrap: str, topic_namespace: str
) -> AsyncIterator[Api]:
    async with api_gateway(make_settings, vault_root, kafka_bootstrap, topic_namespace) as started:
        yield started


async def test_each_route_returns_what_was_published(api: Api) -> None:
    token = await api.user("vera", ["viewer"])
    publish = api.publisher.publish
    now = time.time_ns()
    await publish("risk.equity.v1", start_of_day("100000", "0"), key="_equity")
    path = OrderPath("AAPL")
    await path.publish(api.publisher)
    limits = risk_pb2.RiskLimits(version="v7", max_gross_exposure=to_proto("2000"), max_orders_per_day=10)
    await publish("risk.limits.v1", risk_pb2.LimitsChanged(envelope=new_envelope("risk"), limits=limits), "_limits")
    await publish(
        "risk.state.v1",
        risk_pb2.TradingStateChanged(
            envelope=new_envelope("risk"), state=risk_pb2.TRADING_STATE_REDUCING, reason="drill", actor="user:rita"
        ),
        "_trading_state",
    )
    denied = OrderPath("TSLA")
    await publish("risk.decisions.v1", denied.decision(approved=False), denied.client_order_id)
    await publish(
        "risk.alerts.v1",
        risk_pb2.RiskAlertRaised(envelope=new_envelope("risk"), kind="drawdown", message="drawdown 4%"),
        "drawdown",
    )
    await publish("analytics.alerts.v1", alert("slippage_high", "AAPL"), "slippage_high|AAPL")
    await publish("analytics.alerts.v1", alert("fill_ratio_low", "MSFT", firing=False), "fill_ratio_low|MSFT")
    day = analytics_pb2.PnlDay(
        envelope=new_envelope("analytics"), day="2026-12-01", symbol="_all", realized=to_proto("12.5"), fills=1
    )
    await publish("analytics.pnl.v1", day, "2026-12-01|_all")
    window = analytics_pb2.ExecutionQualityWindow(
        envelope=new_envelope("analytics"),
        symbol="AAPL",
        window_start=now - 60 * NS,
        window_end=now,
        orders=1,
        arrival_slippage_bps=float("nan"),
        filled_notional=to_proto("1012.5"),
    )
    await publish("analytics.execution.v1", window, f"AAPL|{now - 60 * NS}")
    quality = analytics_pb2.DataQualityWindow(
        envelope=new_envelope("analytics"), symbol="AAPL", window_start=now - 60 * NS, score_mean=0.98, gaps=2
    )
    await publish("analytics.quality.v1", quality, f"AAPL|{now - 60 * NS}")
    letters = analytics_pb2.DeadLetterWindow(
        envelope=new_envelope("analytics"), topic="oms.events.v1", window_start=now - 60 * NS, count=3, total=5
    )
    await publish("analytics.deadletters.v1", letters, f"oms.events.v1|{now - 60 * NS}")
    deployment = deploy_pb2.DeploymentChanged(
        envelope=new_envelope("tradectl"), service="risk", action="promote", from_colour="blue", to_colour="green"
    )
    await publish("platform.deployments.v1", deployment, "risk")
    model = signal_pb2.ModelChanged(
        envelope=new_envelope("signal"), role="live", model_name="trend-ppo", model_version="3"
    )
    await publish("signal.models.v1", model, "trend-ppo")
    report = signal_pb2.PredictionMonitorReport(
        envelope=new_envelope("signal"),
        model_name="trend-ppo",
        model_version="3",
        role="live",
        observations=120,
        max_drift=0.4,
        drift=[signal_pb2.FeatureDrift(feature="ret_1", mean_shift=0.4, std_ratio=1.1)],
        realised_reward=0.001,
        expected_reward=0.002,
    )
    await publish("signal.monitoring.v1", report, "3")
    shadow = path.signal()
    shadow.envelope.message_id = "shadow-1"
    shadow.model_version, shadow.shadow, shadow.target_weight = "4", True, 0.1
    await publish("signal.shadow.v1", shadow, "AAPL")
    model_state = api.feed.model
    await wait_until(
        lambda: (
            len(model_state.analytics["alerts"]) == 2
            and model_state.monitoring.newest() is not None
            and model_state.agreement
            and model_state.execution_orders.get(path.client_order_id) is not None
            and len(model_state.analytics["deadletters"]) == 1
            and len(model_state.deployments) == 1
            and len(model_state.breaches) == 1
            and model_state.trading_state is not None
            and model_state.limits is not None
        ),
        what="every record folded",
    )

    account = (await api.get("/api/v1/account", token)).json()
    assert account["equity"] == "100012.5" and account["start_of_day_equity"] == "100000"
    assert account["unrealized_pnl"] == "12.5" and account["trading_state"] == "REDUCING"
    assert account["gross_exposure"] == "1012.5" and account["open_positions"] == 1

    equity = (await api.get("/api/v1/equity", token)).json()
    assert [(p["equity"], p["source"]) for p in equity["items"]] == [("100012.5", "book"), ("100000", "start_of_day")]

    positions = (await api.get("/api/v1/positions", token)).json()["items"]
    assert [(p["symbol"], p["quantity"], p["average_entry_price"]) for p in positions] == [("AAPL", "10", "101.25")]

    orders = (await api.get("/api/v1/orders", token)).json()
    assert [o["client_order_id"] for o in orders["items"]] == [path.client_order_id]
    assert orders["items"][0]["status"] == "FILLED" and orders["next_cursor"] is None
    detail = (await api.get(f"/api/v1/orders/{path.client_order_id}", token)).json()
    lineage = detail["lineage"]
    assert lineage["signal"]["signal_id"] == path.signal_id and lineage["signal"]["model_version"] == "3"
    assert lineage["signal"]["feature_hash"] == "ab" * 32 and lineage["signal"]["target_weight"] == 0.25
    assert lineage["risk_decision"]["approved"] is True and lineage["risk_decision"]["reason_code"] == "APPROVED"
    assert [e["status"] for e in lineage["events"]] == ["INITIALIZED", "SUBMITTED", "ACCEPTED", "FILLED"]
    assert lineage["broker_order_id"] == path.broker_order_id
    assert [f["fill_id"] for f in lineage["fills"]] == [path.fill_id]
    assert lineage["execution_quality"]["slippage_bps"] == 1.5
    missing = await api.get("/api/v1/orders/co-nope", token)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"

    risk = (await api.get("/api/v1/risk", token)).json()
    assert risk["trading_state"] == "REDUCING" and risk["actor"] == "user:rita" and risk["limits_version"] == "v7"
    by_name = {row["name"]: row for row in risk["limits"]}
    assert by_name["max_gross_exposure"]["used"] == "1012.5" and by_name["max_gross_exposure"]["utilisation"] == 0.50625
    assert by_name["max_orders_per_day"]["limit"] == "10" and by_name["max_order_quantity"]["utilisation"] is None
    denials = (await api.get("/api/v1/risk/denials", token)).json()
    assert denials == {"total": 1, "by_reason": {"MAX_POSITION": 1}}
    breaches = (await api.get("/api/v1/risk/breaches", token)).json()["items"]
    assert [(b["kind"], b["message"]) for b in breaches] == [("drawdown", "drawdown 4%")]

    firing = (await api.get("/api/v1/alerts", token, status="firing")).json()["items"]
    assert [(a["rule"], a["subject"], a["status"]) for a in firing] == [("slippage_high", "AAPL", "FIRING")]
    assert len((await api.get("/api/v1/alerts", token)).json()["items"]) == 2

    pnl = (await api.get("/api/v1/pnl/daily", token, symbol="_all")).json()["items"]
    assert [(d["day"], d["realized"], d["fills"]) for d in pnl] == [("2026-12-01", "12.5", 1)]
    assert (await api.get("/api/v1/pnl/daily", token, symbol="MSFT")).json()["items"] == []
    tca = (await api.get("/api/v1/execution-quality", token, symbol="AAPL")).json()["items"]
    assert tca[0]["filled_notional"] == "1012.5" and tca[0]["arrival_slippage_bps"] is None  # NaN is null
    per_order = (await api.get("/api/v1/execution-quality/orders", token)).json()["items"]
    assert [q["client_order_id"] for q in per_order] == [path.client_order_id]
    data_quality = (await api.get("/api/v1/data-quality", token)).json()["items"]
    assert [(q["symbol"], q["score_mean"], q["gaps"]) for q in data_quality] == [("AAPL", 0.98, 2)]
    dead = (await api.get("/api/v1/dead-letters", token, topic="oms.events.v1")).json()["items"]
    assert [(d["count"], d["total"]) for d in dead] == [(3, 5)]

    models = (await api.get("/api/v1/models", token)).json()
    assert [(m["model_name"], m["role"], m["model_version"]) for m in models["models"]] == [("trend-ppo", "live", "3")]
    assert models["monitoring"][0]["max_drift"] == 0.4 and models["monitoring"][0]["expected_reward"] == 0.002
    assert models["agreement"] == [
        {"live_version": "3", "shadow_version": "4", "compared": 1, "agreed": 1, "agreement": 1.0}
    ]
    deployments = (await api.get("/api/v1/deployments", token, service="risk")).json()["items"]
    assert [(d["action"], d["to_colour"]) for d in deployments] == [("promote", "green")]


async def test_pagination_walks_every_order_once_and_refuses_a_bad_cursor(api: Api) -> None:
    token = await api.user("paula", ["viewer"])
    base = time.time_ns() - 3600 * NS
    paths = [OrderPath("AMD" if i % 2 else "INTC", ts_ns=base + i * NS) for i in range(7)]
    for path in paths:
        event = path.event(oms_pb2.ORDER_EVENT_TYPE_INITIALIZED, oms_pb2.ORDER_STATUS_INITIALIZED, 0)
        await api.publisher.publish("oms.events.v1", event, path.client_order_id)
    await wait_until(lambda: len(api.feed.model.orders) == 7, what="seven orders folded")

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/api/v1/orders", token, **params)).json()
        seen += [o["client_order_id"] for o in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [p.client_order_id for p in reversed(paths)]  # newest first, each once

    amd = (await api.get("/api/v1/orders", token, symbol="AMD", limit=2)).json()
    assert [o["symbol"] for o in amd["items"]] == ["AMD", "AMD"]
    rest = (await api.get("/api/v1/orders", token, symbol="AMD", limit=2, cursor=amd["next_cursor"])).json()
    assert [o["client_order_id"] for o in amd["items"] + rest["items"]] == [
        p.client_order_id for p in reversed(paths) if p.symbol == "AMD"
    ]

    first = (await api.get("/api/v1/orders", token, limit=3)).json()["next_cursor"]
    body, mac = first.split(".")
    for bad, why in (
        (body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac, "altered"),
        ("garbage", "not a cursor"),
        (first, "another list"),  # sent with other filters below
    ):
        params = {"cursor": bad, **({"symbol": "AMD"} if why == "another list" else {})}
        refused = await api.get("/api/v1/orders", token, **params)
        assert refused.status_code == 400, (why, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "cursor"
    for limit in (0, 501):
        too = await api.get("/api/v1/orders", token, limit=limit)
        assert too.status_code == 422 and "limit" in too.json()["errors"][0]["field"]

    # A time range selects by creation time; the bounds are checked.
    window = (
        await api.get("/api/v1/orders", token, **{"from": _rfc3339(base + 2 * NS), "to": _rfc3339(base + 5 * NS)})
    ).json()
    assert [o["client_order_id"] for o in window["items"]] == [p.client_order_id for p in reversed(paths[2:5])]
    cases = [
        ({"from": "yesterday"}, "from"),
        ({"from": _rfc3339(base + 5 * NS), "to": _rfc3339(base)}, "from"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ({"from": "2020-01-01T00:00:00Z"}, "from"),
        ({"to": "2026-13-01"}, "to"),
    ]
    for params, field in cases:
        refused = await api.get("/api/v1/orders", token, **params)
        assert refused.status_code == 400, (params, refused.text)
        assert refused.json()["errors"][0]["field"] == field, params


async def test_every_read_needs_a_token(api: Api) -> None:
    for path in ("/api/v1/account", "/api/v1/orders", "/api/v1/risk", "/api/v1/alerts", "/api/v1/stream"):
        response = await api.client.http.get(path)
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"


def _rfc3339(ns: int) -> str:
    from gateway_service.readmodel.convert import rfc3339

    return str(rfc3339(ns))
