"""The REST writes under /api/v1, each relayed to the gRPC RPC tradectl calls for it, with the caller's bearer token
(api_relay): the service's own roles and four-eyes rules apply, and the access policy's `routes:` refuses the wrong
role before anything is called. Bodies are strict (unknown fields refused, decimals as strings, sizes bounded).

- `POST /risk/halt` SetTradingState(HALTED): at once (the kill switch; `cancel_open_orders` cancels every open order).
- `POST /risk/resume` SetTradingState(ACTIVE or REDUCING): a lift, so it waits for a second risk officer (202 with
  the pending change); `GET /risk/changes` lists what waits, `POST /risk/changes/{id}/approve` approves one by its
  content hash.
- `PUT /risk/limits` UpdateLimits: a tighter limit is in force at once, a looser one waits (202).
- `POST /orders` SubmitOrder, `DELETE /orders/{client_order_id}` CancelOrder.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2, oms_pb2_grpc
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.decimals import to_proto

from gateway_service.problems import Conflict, InvalidField
from gateway_service.readmodel.convert import model_for, to_json
from gateway_service.routes.api_common import ItemsPage
from gateway_service.routes.api_read import CLIENT_ORDER_ID_PATTERN, SYMBOL_PATTERN
from gateway_service.routes.api_relay import Unavailable, address, relay
from gateway_service.security import authorize

router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)], tags=["write"])
RISK, OMS = "risk", "order-management"
DECIMAL_PATTERN = r"^-?\d{1,18}(\.\d{1,12})?$"
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
OptionalReason = Annotated[str, StringConstraints(max_length=500)]
DecimalText = Annotated[str, StringConstraints(pattern=DECIMAL_PATTERN)]
PositiveDecimal = Annotated[str, StringConstraints(pattern=r"^\d{1,18}(\.\d{1,12})?$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HaltRequest(Strict):
    reason: Reason
    cancel_open_orders: bool = Field(True, description="also cancel every open order (the kill switch)")


class ResumeRequest(Strict):
    reason: Reason
    state: Literal["ACTIVE", "REDUCING"] = Field("ACTIVE", description="the state to lift to")


class LimitsRequest(Strict):
    """The limits wanted; a field left out stays as it is."""

    reason: Reason
    version: Annotated[str, StringConstraints(max_length=64)] | None = None
    max_order_quantity: PositiveDecimal | None = None
    max_order_notional: PositiveDecimal | None = None
    price_collar: PositiveDecimal | None = None
    max_position_notional: PositiveDecimal | None = None
    max_gross_exposure: PositiveDecimal | None = None
    max_net_exposure: PositiveDecimal | None = None
    max_orders_per_second: int | None = Field(None, ge=1, le=1_000_000)
    max_orders_per_day: int | None = Field(None, ge=1, le=100_000_000)
    max_daily_loss: PositiveDecimal | None = None
    max_drawdown: PositiveDecimal | None = None
    max_market_data_age_ms: int | None = Field(None, ge=1, le=86_400_000)
    restricted_symbols: list[Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]] | None = Field(
        None, max_length=1000, description="the whole new list (when given, even empty)"
    )


class ApproveRequest(Strict):
    content_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="the content hash of the change reviewed (GET /api/v1/risk/changes shows it)"
    )
    reason: OptionalReason = ""


class OrderRequest(Strict):
    symbol: Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
    side: Literal["BUY", "SELL"]
    quantity: PositiveDecimal
    order_type: Literal["MARKET", "LIMIT", "STOP", "STOP_LIMIT", "TRAILING_STOP"] = "MARKET"
    time_in_force: Literal["DAY", "GTC", "IOC", "FOK", "OPG", "CLS"] = "DAY"
    limit_price: PositiveDecimal | None = None
    stop_price: PositiveDecimal | None = None
    trail_price: PositiveDecimal | None = None
    trail_percent: PositiveDecimal | None = None
    decision_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")] | None = Field(
        None, description="your id of this decision: the same id is the same order (retries are safe)"
    )
    strategy_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")] = "manual"


ChangeOutcome = model_for(risk_pb2.ChangeOutcome)
TradingStateResponse = model_for(risk_pb2.TradingStateResponse)
UpdateLimitsResponse = model_for(risk_pb2.UpdateLimitsResponse)
ApproveChangeResponse = model_for(risk_pb2.ApproveChangeResponse)
RiskChange = model_for(risk_pb2.RiskChangeRecorded)
SubmitOrderResponse = model_for(oms_pb2.SubmitOrderResponse)
CancelOrderResponse = model_for(oms_pb2.CancelOrderResponse)


def _risk(request: Request) -> str:
    return address(request, "risk_address", "127.0.0.1:50054")


def _oms(request: Request) -> str:
    return address(request, "oms_address", "127.0.0.1:50053")


def _state_answer(response: risk_pb2.TradingStateResponse) -> JSONResponse:
    waits = bool(response.outcome.change_id) and not response.outcome.applied
    return JSONResponse(to_json(response), status_code=202 if waits else 200)


async def _set_state(request: Request, state: int, reason: str, cancel: bool) -> JSONResponse:
    message = risk_pb2.SetTradingStateRequest(state=state, reason=reason, cancel_open_orders=cancel)  # type: ignore[arg-type]
    response = await relay(
        request,
        RISK,
        _risk(request),
        lambda ch, md, t: risk_pb2_grpc.RiskServiceStub(ch).SetTradingState(message, metadata=md, timeout=t),
    )
    return _state_answer(response)


STATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": TradingStateResponse, "description": "in force"},
    202: {"model": TradingStateResponse, "description": "waiting for a second risk officer (outcome.change_id)"},
}


@router.post("/risk/halt", response_model=TradingStateResponse, responses=STATE_RESPONSES)  # type: ignore[valid-type]
async def halt(body: HaltRequest, request: Request) -> Any:
    """The kill switch: HALTED at once (risk-officer)."""
    return await _set_state(request, risk_pb2.TRADING_STATE_HALTED, body.reason, body.cancel_open_orders)


@router.post("/risk/resume", response_model=TradingStateResponse, responses=STATE_RESPONSES)  # type: ignore[valid-type]
async def resume(body: ResumeRequest, request: Request) -> Any:
    """Lift HALTED or REDUCING: a pending change a second risk officer approves (four eyes)."""
    state = risk_pb2.TradingState.Value(f"TRADING_STATE_{body.state}")
    return await _set_state(request, state, body.reason, False)


@router.put(
    "/risk/limits",
    response_model=UpdateLimitsResponse,  # type: ignore[valid-type]
    responses={202: {"model": UpdateLimitsResponse, "description": "a looser part waits for a second officer"}},
)
async def update_limits(body: LimitsRequest, request: Request) -> Any:
    """Change limits: a tighter one is in force at once, a looser one waits for a second risk officer."""
    limits = risk_pb2.RiskLimits(version=body.version or "")
    for name in (
        "max_order_quantity",
        "max_order_notional",
        "price_collar",
        "max_position_notional",
        "max_gross_exposure",
        "max_net_exposure",
        "max_daily_loss",
        "max_drawdown",
    ):
        value = getattr(body, name)
        if value is not None:
            getattr(limits, name).CopyFrom(to_proto(value))
    for name in ("max_orders_per_second", "max_orders_per_day", "max_market_data_age_ms"):
        if getattr(body, name) is not None:
            setattr(limits, name, getattr(body, name))
    if body.restricted_symbols is not None:
        limits.restricted_symbols.extend(body.restricted_symbols)
    message = risk_pb2.UpdateLimitsRequest(
        limits=limits, reason=body.reason, replace_restricted_symbols=body.restricted_symbols is not None
    )
    response = await relay(
        request,
        RISK,
        _risk(request),
        lambda ch, md, t: risk_pb2_grpc.RiskServiceStub(ch).UpdateLimits(message, metadata=md, timeout=t),
    )
    waits = bool(response.outcome.change_id) and not response.outcome.applied
    return JSONResponse(to_json(response), status_code=202 if waits else 200)


@router.get("/risk/changes", response_model=ItemsPage[RiskChange])  # type: ignore[valid-type]
async def pending_changes(request: Request) -> Any:
    """The changes waiting for a second risk officer, oldest first (ListPendingChanges)."""
    response = await relay(
        request,
        RISK,
        _risk(request),
        lambda ch, md, t: risk_pb2_grpc.RiskServiceStub(ch).ListPendingChanges(
            risk_pb2.ListPendingChangesRequest(), metadata=md, timeout=t
        ),
    )
    return {"items": [to_json(change) for change in response.changes], "next_cursor": None}


@router.post("/risk/changes/{change_id}/approve", response_model=ApproveChangeResponse)  # type: ignore[valid-type]
async def approve_change(
    body: ApproveRequest,
    request: Request,
    change_id: str = Path(pattern=r"^[A-Za-z0-9._:-]{1,128}$"),
) -> Any:
    """Approve another risk officer's pending change, bound to the content hash you reviewed (never your own)."""
    message = risk_pb2.ApproveChangeRequest(change_id=change_id, content_hash=body.content_hash, reason=body.reason)
    response = await relay(
        request,
        RISK,
        _risk(request),
        lambda ch, md, t: risk_pb2_grpc.RiskServiceStub(ch).ApproveChange(message, metadata=md, timeout=t),
    )
    return to_json(response)


# -- orders ---------------------------------------------------------------------------------------------------
CONFLICTS = ("DUPLICATE", "RECONCILIATION_BLOCKED")


@router.post(
    "/orders",
    status_code=201,
    response_model=SubmitOrderResponse,  # type: ignore[valid-type]
    responses={200: {"model": SubmitOrderResponse, "description": "recorded, not accepted (risk denied it)"}},
)
async def submit_order(body: OrderRequest, request: Request) -> Any:
    """A manual order (trader): sized as given, checked by risk, recorded with you as `submitted_by`."""
    message = oms_pb2.SubmitOrderRequest(
        symbol=body.symbol,
        side=common_pb2.OrderSide.Value(f"ORDER_SIDE_{body.side}"),
        quantity=to_proto(body.quantity),
        order_type=common_pb2.OrderType.Value(f"ORDER_TYPE_{body.order_type}"),
        time_in_force=common_pb2.TimeInForce.Value(f"TIME_IN_FORCE_{body.time_in_force}"),
        limit_price=to_proto(body.limit_price),
        stop_price=to_proto(body.stop_price),
        trail_price=to_proto(body.trail_price),
        trail_percent=to_proto(body.trail_percent),
        decision_id=body.decision_id or str(uuid.uuid4()),
        strategy_id=body.strategy_id,
    )
    response = await relay(
        request,
        OMS,
        _oms(request),
        lambda ch, md, t: oms_pb2_grpc.OrderServiceStub(ch).SubmitOrder(message, metadata=md, timeout=t),
    )
    if response.accepted:
        return JSONResponse(to_json(response), status_code=201)
    if response.reason_code == "INVALID_ORDER":
        raise InvalidField(f"{OMS}: {response.reason}", field="body")
    if response.reason_code in CONFLICTS:
        raise Conflict(f"{OMS}: {response.reason_code}: {response.reason}")
    if response.reason_code in ("UNAVAILABLE", "ABANDONED"):
        raise Unavailable(f"{OMS}: {response.reason}", headers={"Retry-After": "5"})
    return JSONResponse(to_json(response), status_code=200)


@router.delete(
    "/orders/{client_order_id}",
    status_code=202,
    response_model=CancelOrderResponse,  # type: ignore[valid-type]
)
async def cancel_order(
    request: Request,
    client_order_id: str = Path(pattern=CLIENT_ORDER_ID_PATTERN),
    reason: str = Query("cancelled from the API", max_length=500),
) -> Any:
    """Cancel an open order (trader): the cancel goes to the broker; the order's events follow on the stream."""
    message = oms_pb2.CancelOrderRequest(client_order_id=client_order_id, reason=reason)
    response = await relay(
        request,
        OMS,
        _oms(request),
        lambda ch, md, t: oms_pb2_grpc.OrderServiceStub(ch).CancelOrder(message, metadata=md, timeout=t),
    )
    if not response.accepted:
        raise Conflict(f"{OMS}: {response.reason}", field="client_order_id")
    return JSONResponse(to_json(response), status_code=202)
