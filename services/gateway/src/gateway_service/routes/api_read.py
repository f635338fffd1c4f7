"""The REST reads under /api/v1, served from the read model (readmodel/), never by replaying a topic per request.

Every list is `{"items": [...], "next_cursor": ...}`, newest first, with `limit` (default 100, at most 500),
`cursor`, and `from`/`to` (RFC 3339) where time applies (api_common). Items are the JSON of the records they come
from (readmodel.convert: decimals as strings, times as RFC 3339 plus `_ns`). Who may call each route is the access
policy's `routes:` (every role reads).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, create_model
from trading.analytics.v1 import analytics_pb2
from trading.deploy.v1 import deploy_pb2
from trading.execution.v1 import execution_pb2, execution_pb2_grpc
from trading.oms.v1 import oms_pb2
from trading.risk.v1 import risk_pb2
from trading.signal.v1 import signal_pb2

from gateway_service.problems import NotFound, Problem
from gateway_service.readmodel.convert import model_for
from gateway_service.routes.api_common import ItemsPage, ListQuery, list_query, model_of, paged
from gateway_service.routes.api_relay import address, relay
from gateway_service.security import authorize

router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)], tags=["read"])
SYMBOL_PATTERN = r"^[A-Za-z0-9._/-]{1,32}$"
CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
SymbolQuery = Query(None, pattern=SYMBOL_PATTERN, description="only this symbol")
ACCOUNT_TIMEOUT_S = 1.0  # the account answers from the read model; the broker's figures only if they come quickly
ACCOUNT_CACHE_S = 2.0


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- response models ---------------------------------------------------------------------------------------------
Order = model_for(oms_pb2.Order)
Position = create_model(
    "Position",
    __base__=model_for(oms_pb2.Position),
    updated_at=(str | None, ...),
    updated_at_ns=(int, ...),
)
RiskDecision = model_for(risk_pb2.RiskDecision)
RiskAlert = model_for(risk_pb2.RiskAlertRaised)
RiskChange = model_for(risk_pb2.RiskChangeRecorded)
ExecutionQualityMeasured = model_for(execution_pb2.ExecutionQualityMeasured)
ExecutionReport = model_for(execution_pb2.ExecutionReport)
ExecutionWindow = model_for(analytics_pb2.ExecutionQualityWindow)
PnlDay = model_for(analytics_pb2.PnlDay)
QualityWindow = model_for(analytics_pb2.DataQualityWindow)
DeadLetterWindow = model_for(analytics_pb2.DeadLetterWindow)
Alert = model_for(analytics_pb2.Alert)
Deployment = model_for(deploy_pb2.DeploymentChanged)
ModelChanged = model_for(signal_pb2.ModelChanged)
FeatureDrift = model_for(signal_pb2.FeatureDrift)


class Account(View):
    equity: str | None
    cash: str | None = Field(description="the broker account's (execution's GetAccount); null when unreachable")
    buying_power: str | None
    broker_equity: str | None
    start_of_day_equity: str | None
    trading_day: str | None
    pnl_today: str | None
    realized_pnl_today: str | None
    unrealized_pnl_today: str | None
    realized_pnl: str
    unrealized_pnl: str
    gross_exposure: str
    net_exposure: str
    open_positions: int
    trading_state: str
    account_id: str | None


class EquityPoint(View):
    ts: str | None
    ts_ns: int
    equity: str
    source: Literal["start_of_day", "book"]


class OrderEventView(View):
    message_id: str
    event_type: str
    status: str
    ts: str | None
    ts_ns: int
    reason: str
    fill_id: str
    last_quantity: str | None
    last_price: str | None
    filled_quantity: str | None


class Fill(View):
    client_order_id: str
    fill_id: str
    symbol: str
    side: str
    quantity: str | None
    price: str | None
    ts: str | None
    ts_ns: int


class SignalLineage(View):
    signal_id: str
    model_name: str
    model_version: str
    feature_hash: str
    target_weight: float | None
    reference_price: str | None
    strategy_id: str
    ts: str | None
    ts_ns: int


class DecisionLineage(View):
    risk_decision_id: str
    approved: bool
    reason_code: str
    reason: str
    trading_state: str
    limits_version: str
    ts: str | None
    ts_ns: int


class Lineage(View):
    signal: SignalLineage | None
    signal_id: str
    model_version: str
    feature_hash: str
    submitted_by: str
    risk_decision: DecisionLineage | None
    events: list[OrderEventView]
    broker_order_id: str
    fills: list[Fill]
    execution_quality: ExecutionQualityMeasured | None  # type: ignore[valid-type]


class OrderDetail(View):
    order: Order  # type: ignore[valid-type]
    lineage: Lineage


class LimitUse(View):
    name: str
    limit: str | None
    used: str | None
    utilisation: float | None


class Risk(View):
    trading_state: str
    reason: str
    actor: str
    changed_at: str | None
    changed_at_ns: int
    limits_version: str
    limits: list[LimitUse]


class Denials(View):
    total: int
    by_reason: dict[str, int]


class Monitoring(View):
    model_name: str
    model_version: str
    role: str
    observations: int
    max_drift: float | None
    drift_alert: bool
    drift: list[FeatureDrift]  # type: ignore[valid-type]
    realised_reward: float | None
    expected_reward: float | None
    ts: str | None
    ts_ns: int


class Agreement(View):
    live_version: str
    shadow_version: str
    compared: int
    agreed: int
    agreement: float | None


class Models(View):
    models: list[ModelChanged]  # type: ignore[valid-type]
    monitoring: list[Monitoring]
    agreement: list[Agreement]


# -- account, equity, positions -------------------------------------------------------------------------------
@router.get("/account")
async def account(request: Request) -> Account:
    """Equity (start-of-day equity + the book's P&L since), P&L today and in total, exposure, the trading state;
    cash and buying power from the broker account (execution's GetAccount with your token; null if unreachable)."""
    broker = await _broker_account(request)
    return Account(
        **model_of(request).account(),
        cash=broker.cash.value or None if broker else None,
        buying_power=broker.buying_power.value or None if broker else None,
        broker_equity=broker.equity.value or None if broker else None,
    )


async def _broker_account(request: Request) -> Any:
    """Execution's answer (or None), kept ACCOUNT_CACHE_S: every role may read the one account, and a burst of
    account reads (or execution away) costs one call, not one each."""
    cached = getattr(request.app.state, "broker_account", None)
    if cached is not None and time.monotonic() - cached[0] < ACCOUNT_CACHE_S:
        return cached[1]
    request_message = execution_pb2.GetAccountRequest()
    try:
        answer = await relay(
            request,
            "execution",
            address(request, "execution_address", "127.0.0.1:50055"),
            lambda ch, md, t: execution_pb2_grpc.ExecutionServiceStub(ch).GetAccount(
                request_message, metadata=md, timeout=min(t, ACCOUNT_TIMEOUT_S)
            ),
        )
    except Problem:
        answer = None
    request.app.state.broker_account = (time.monotonic(), answer)
    return answer


@router.get("/equity", response_model=ItemsPage[EquityPoint])
async def equity(request: Request, query: ListQuery = Depends(list_query)) -> Any:
    """The equity curve: each day's start (risk.equity.v1), then a point per position change."""
    return paged(request, model_of(request).equity, query)


@router.get("/positions", response_model=ItemsPage[Position])  # type: ignore[valid-type]
async def positions(request: Request, symbol: str | None = SymbolQuery) -> Any:
    """Every position of record (oms.positions.v1), by symbol; flat ones included (their realized P&L stays)."""
    rows = model_of(request).positions
    items = [rows[s] for s in sorted(rows) if symbol is None or s == symbol]
    return {"items": items, "next_cursor": None}


@router.get("/pnl/daily", response_model=ItemsPage[PnlDay])  # type: ignore[valid-type]
async def pnl_daily(request: Request, query: ListQuery = Depends(list_query), symbol: str | None = SymbolQuery) -> Any:
    """P&L by day and symbol (analytics.pnl.v1); symbol `_all` is the account's."""
    return paged(
        request,
        model_of(request).analytics["pnl"],
        query,
        where=(lambda row: row["symbol"] == symbol) if symbol else None,
        filters={"symbol": symbol},
    )


# -- orders ---------------------------------------------------------------------------------------------------
OrderStatus = Literal[
    "INITIALIZED",
    "DENIED",
    "SUBMITTED",
    "ACCEPTED",
    "REJECTED",
    "PARTIALLY_FILLED",
    "FILLED",
    "PENDING_CANCEL",
    "CANCELED",
    "EXPIRED",
]


@router.get("/orders", response_model=ItemsPage[Order])  # type: ignore[valid-type]
async def orders(
    request: Request,
    query: ListQuery = Depends(list_query),
    symbol: str | None = SymbolQuery,
    status: OrderStatus | None = Query(None, description="only orders in this status"),
) -> Any:
    """Orders of record (the latest state of each, from oms.events.v1), newest created first."""

    def where(order: dict[str, Any]) -> bool:
        return (symbol is None or order["symbol"] == symbol) and (status is None or order["status"] == status)

    return paged(request, model_of(request).orders, query, where=where, filters={"symbol": symbol, "status": status})


@router.get("/orders/{client_order_id}")
async def order(request: Request, client_order_id: str = Path(pattern=CLIENT_ORDER_ID_PATTERN)) -> OrderDetail:
    """One order with its lineage: signal (model version, feature hash, target), risk decision, events, broker
    order id, fills, execution quality."""
    detail = model_of(request).lineage(client_order_id)
    if detail is None:
        raise NotFound(f"no order {client_order_id!r} in the read model", field="client_order_id")
    return OrderDetail.model_validate(detail)


# -- execution and data quality ---------------------------------------------------------------------------------
def _symbol_page(request: Request, table: str, query: ListQuery, symbol: str | None) -> dict[str, Any]:
    return paged(
        request,
        model_of(request).analytics[table],
        query,
        where=(lambda row: row["symbol"] == symbol) if symbol else None,
        filters={"symbol": symbol},
    )


@router.get("/execution-quality", response_model=ItemsPage[ExecutionWindow])  # type: ignore[valid-type]
async def execution_quality(
    request: Request, query: ListQuery = Depends(list_query), symbol: str | None = SymbolQuery
) -> Any:
    """Transaction-cost analysis per symbol and window (analytics.execution.v1; symbol `_all` = every symbol)."""
    return _symbol_page(request, "execution", query, symbol)


@router.get("/execution-quality/orders", response_model=ItemsPage[ExecutionQualityMeasured])  # type: ignore[valid-type]
async def execution_quality_orders(
    request: Request, query: ListQuery = Depends(list_query), symbol: str | None = SymbolQuery
) -> Any:
    """Execution quality per order (execution.quality.v1): latencies, slippage, fill ratio."""
    return paged(
        request,
        model_of(request).execution_orders,
        query,
        where=(lambda row: row["symbol"] == symbol) if symbol else None,
        filters={"symbol": symbol},
    )


@router.get("/data-quality", response_model=ItemsPage[QualityWindow])  # type: ignore[valid-type]
async def data_quality(
    request: Request, query: ListQuery = Depends(list_query), symbol: str | None = SymbolQuery
) -> Any:
    """Data quality per symbol and window (analytics.quality.v1): score, gaps, failovers, rejects."""
    return _symbol_page(request, "quality", query, symbol)


@router.get("/dead-letters", response_model=ItemsPage[DeadLetterWindow])  # type: ignore[valid-type]
async def dead_letters(
    request: Request,
    query: ListQuery = Depends(list_query),
    topic: str | None = Query(None, pattern=r"^[a-z0-9._-]{1,128}$", description="only this source topic"),
) -> Any:
    """Dead letters per source topic and window (analytics.deadletters.v1)."""
    return paged(
        request,
        model_of(request).analytics["deadletters"],
        query,
        where=(lambda row: row["topic"] == topic) if topic else None,
        filters={"topic": topic},
    )


# -- risk -----------------------------------------------------------------------------------------------------
@router.get("/risk")
async def risk(request: Request) -> Risk:
    """The trading state and each limit with what is used of it (exposure, orders today, the day's loss,
    drawdown); per-order limits have no utilisation (null)."""
    return Risk.model_validate(model_of(request).risk_view())


@router.get("/risk/denials")
async def risk_denials(request: Request, query: ListQuery = Depends(list_query)) -> Denials:
    """Denied orders by reason code (risk.decisions.v1 not approved), within from..to."""
    return Denials(**model_of(request).denials_by_reason(query.from_ns, query.to_ns))


@router.get("/risk/breaches", response_model=ItemsPage[RiskAlert])  # type: ignore[valid-type]
async def risk_breaches(request: Request, query: ListQuery = Depends(list_query)) -> Any:
    """Risk alerts (risk.alerts.v1): limits breached, drawdowns, stale data."""
    return paged(request, model_of(request).breaches, query)


# -- models, deployments, alerts ----------------------------------------------------------------------------------
@router.get("/models")
async def models(request: Request) -> Models:
    """The served models (live, shadow), prediction monitoring (drift, realized against expected reward) and how
    often the shadow policy agrees with the live one on the same bar."""
    return Models.model_validate(model_of(request).models_view())


@router.get("/deployments", response_model=ItemsPage[Deployment])  # type: ignore[valid-type]
async def deployments(
    request: Request,
    query: ListQuery = Depends(list_query),
    service: str | None = Query(None, pattern=r"^[a-z0-9-]{1,64}$", description="only this service"),
) -> Any:
    """Blue-green promotions and rollbacks (platform.deployments.v1)."""
    return paged(
        request,
        model_of(request).deployments,
        query,
        where=(lambda row: row["service"] == service) if service else None,
        filters={"service": service},
    )


@router.get("/alerts", response_model=ItemsPage[Alert])  # type: ignore[valid-type]
async def alerts(
    request: Request,
    query: ListQuery = Depends(list_query),
    status: Literal["firing", "resolved"] | None = Query(None, description="only alerts in this state"),
) -> Any:
    """Alert rules' state per subject (analytics.alerts.v1), newest start first."""
    wanted = status.upper() if status else None
    return paged(
        request,
        model_of(request).analytics["alerts"],
        query,
        where=(lambda row: row["status"] == wanted) if wanted else None,
        filters={"status": status},
    )
