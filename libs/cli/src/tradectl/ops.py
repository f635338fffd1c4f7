"""tradectl orders / positions / risk: the operator's view of the book and the risk controls, over gRPC."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import grpc
import typer
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table
from trading.oms.v1 import oms_pb2, oms_pb2_grpc
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.decimals import from_proto
from trading_platform.pki import PkiError
from trading_platform.rpc import channel

from tradectl.auth import GatewayError
from tradectl.grpc_client import client_security

console = Console(stderr=True)
risk_app = typer.Typer(help="The trading state (kill switch) and limits.", no_args_is_help=True)
OMS = typer.Option("127.0.0.1:50053", "--oms", envvar="TRADECTL_OMS_ADDRESS", help="order-management gRPC address")
RISK = typer.Option("127.0.0.1:50054", "--risk", envvar="TRADECTL_RISK_ADDRESS", help="risk gRPC address")
JSON = typer.Option(False, "--json", help="machine-readable output")


def register(app: typer.Typer) -> None:
    app.command("orders")(orders)
    app.command("positions")(positions)
    app.add_typer(risk_app, name="risk")


def _call(target: str, method: Any) -> Any:
    try:
        security = client_security()
    except (PkiError, OSError, GatewayError) as error:
        console.print(f"[red]cannot call the platform: {error}[/red] (is it up? `make up`; `tradectl login`?)")
        raise typer.Exit(1) from None

    async def run() -> Any:
        async with channel(target, default_timeout_s=5.0, security=security) as open_channel:
            return await method(open_channel)

    try:
        return asyncio.run(run())
    except grpc.aio.AioRpcError as error:
        console.print(f"[red]{target}: {error.code().name}: {error.details()}[/red] (is the platform up? `make up`)")
        raise typer.Exit(1) from None


def _dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def orders(
    oms: str = OMS,
    status: list[str] = typer.Option([], "--status", help="e.g. FILLED, SUBMITTED (repeatable); default all"),
    symbol: str = typer.Option("", help="only this symbol"),
    limit: int = typer.Option(50, help="newest first, at most this many"),
    as_json: bool = JSON,
) -> None:
    """The orders of record, newest first, with their lineage."""
    try:
        statuses = [oms_pb2.OrderStatus.Value(f"ORDER_STATUS_{s.upper()}") for s in status]
    except ValueError:
        console.print(
            f"[red]unknown status in {status}; known: "
            f"{[n.removeprefix('ORDER_STATUS_') for n in oms_pb2.OrderStatus.keys()][1:]}[/red]"
        )
        raise typer.Exit(2) from None
    request = oms_pb2.ListOrdersRequest(symbol=symbol, statuses=statuses, limit=limit)
    response = _call(oms, lambda ch: oms_pb2_grpc.OrderServiceStub(ch).ListOrders(request))
    if as_json:
        print(json.dumps([_dict(o) for o in response.orders], indent=2))
        return
    table = Table(title=f"orders ({len(response.orders)})")
    for column in ("client order id", "symbol", "side", "qty", "filled", "avg price", "status", "model", "risk"):
        table.add_column(column)
    for order in response.orders:
        table.add_row(
            order.client_order_id,
            order.symbol,
            "buy" if order.side == 1 else "sell",
            order.quantity.value,
            order.filled_quantity.value or "0",
            order.average_fill_price.value or "-",
            oms_pb2.OrderStatus.Name(order.status).removeprefix("ORDER_STATUS_"),
            order.lineage.model_version or "-",
            (order.lineage.risk_decision_id or "-")[:8],
        )
    console.print(table)


def positions(oms: str = OMS, as_json: bool = JSON) -> None:
    """Positions of record with average entry price and P&L."""
    response = _call(oms, lambda ch: oms_pb2_grpc.OrderServiceStub(ch).ListPositions(oms_pb2.ListPositionsRequest()))
    if as_json:
        print(
            json.dumps(
                {
                    "positions": [_dict(p) for p in response.positions],
                    "realized_pnl": response.realized_pnl.value or "0",
                    "unrealized_pnl": response.unrealized_pnl.value or "0",
                },
                indent=2,
            )
        )
        return
    table = Table(title="positions")
    for column in ("symbol", "quantity", "avg entry", "market", "realized P&L", "unrealized P&L"):
        table.add_column(column)
    for position in response.positions:
        table.add_row(
            position.symbol,
            position.quantity.value,
            position.average_entry_price.value,
            position.market_price.value,
            position.realized_pnl.value,
            position.unrealized_pnl.value,
        )
    console.print(table)
    total = (from_proto(response.realized_pnl) or Decimal(0)) + (from_proto(response.unrealized_pnl) or Decimal(0))
    console.print(f"total P&L {total:.2f}")


def _set_state(risk: str, state: int, reason: str, cancel: bool, as_json: bool) -> None:
    request = risk_pb2.SetTradingStateRequest(state=state, reason=reason, cancel_open_orders=cancel)
    response = _call(risk, lambda ch: risk_pb2_grpc.RiskServiceStub(ch).SetTradingState(request))
    if as_json:
        print(json.dumps(_dict(response)))
    elif response.outcome.change_id:
        _print_pending(response.outcome)
    else:
        console.print(f"trading state: [bold]{risk_pb2.TradingState.Name(response.state)}[/bold] ({reason})")


def _print_pending(outcome: risk_pb2.ChangeOutcome) -> None:
    console.print(
        f"[yellow]waiting for a second risk officer[/yellow]: change {outcome.change_id} "
        f"(`tradectl risk approve {outcome.change_id}`)"
    )


REASON = typer.Option(..., "--reason", help="why (recorded on risk.state.v1 and in the audit ledger)")


@risk_app.command()
def halt(
    risk: str = RISK,
    reason: str = REASON,
    as_json: bool = JSON,
    keep_orders: bool = typer.Option(False, "--keep-orders", help="do not cancel open orders"),
) -> None:
    """The kill switch: HALTED (no new orders) and, unless --keep-orders, cancel every open order. At once."""
    _set_state(risk, risk_pb2.TRADING_STATE_HALTED, reason, not keep_orders, as_json)


@risk_app.command()
def reduce(risk: str = RISK, reason: str = REASON, as_json: bool = JSON) -> None:
    """REDUCING: only orders that shrink a position pass (from HALTED: waits for a second risk officer)."""
    _set_state(risk, risk_pb2.TRADING_STATE_REDUCING, reason, False, as_json)


@risk_app.command()
def resume(risk: str = RISK, reason: str = REASON, as_json: bool = JSON) -> None:
    """ACTIVE: trading within limits. A lift: it waits for a second risk officer's `tradectl risk approve`."""
    _set_state(risk, risk_pb2.TRADING_STATE_ACTIVE, reason, False, as_json)


def _change_summary(change: risk_pb2.ProposedChange) -> str:
    if change.HasField("trading_state"):
        move = change.trading_state
        names = risk_pb2.TradingState.Name
        return f"trading state {names(move.from_state)} -> {names(move.state)}"
    raised = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in _dict(change.limits.raised).items()}
    parts = [f"{key} -> {value}" for key, value in raised.items() if key != "version"]
    parts += [f"unrestrict {symbol}" for symbol in change.limits.unrestricted_symbols]
    return ", ".join(parts) or "nothing"


def _pending(risk: str) -> list[risk_pb2.RiskChangeRecorded]:
    request = risk_pb2.ListPendingChangesRequest()
    response = _call(risk, lambda ch: risk_pb2_grpc.RiskServiceStub(ch).ListPendingChanges(request))
    return list(response.changes)


@risk_app.command()
def pending(risk: str = RISK, as_json: bool = JSON) -> None:
    """The changes waiting for a second risk officer (raised limits, unrestricted symbols, lifted states)."""
    changes = _pending(risk)
    if as_json:
        print(json.dumps([_dict(change) for change in changes], indent=2))
        return
    table = Table(title="changes waiting for a second risk officer")
    for column in ("change id", "change", "requested by", "reason", "expires in", "content hash"):
        table.add_column(column)
    now = time.time_ns()
    for change in changes:
        table.add_row(
            change.change_id,
            _change_summary(change.change),
            change.requested_by,
            change.reason,
            f"{max(0, change.expires_at - now) / 1e9:.0f} s",
            change.content_hash[:16],
        )
    console.print(table)


@risk_app.command()
def approve(
    change_id: str = typer.Argument(..., help="the change id `tradectl risk pending` lists"),
    risk: str = RISK,
    reason: str = typer.Option("", "--reason", help="why (recorded on risk.changes.v1)"),
    as_json: bool = JSON,
) -> None:
    """Approve another risk officer's pending change: it is applied at once (once; never your own)."""
    found = next((change for change in _pending(risk) if change.change_id == change_id), None)
    if found is None:
        console.print(f"[red]no pending change {change_id}[/red] (`tradectl risk pending` lists them)")
        raise typer.Exit(1)
    # The approval names the content hash of the change shown here: it cannot approve anything else.
    request = risk_pb2.ApproveChangeRequest(change_id=change_id, content_hash=found.content_hash, reason=reason)
    response = _call(risk, lambda ch: risk_pb2_grpc.RiskServiceStub(ch).ApproveChange(request))
    if as_json:
        print(json.dumps(_dict(response)))
    else:
        console.print(f"approved and applied: {_change_summary(response.change)}")


@risk_app.command()
def status(risk: str = RISK, as_json: bool = JSON) -> None:
    """The current trading state."""
    response = _call(
        risk, lambda ch: risk_pb2_grpc.RiskServiceStub(ch).GetTradingState(risk_pb2.GetTradingStateRequest())
    )
    if as_json:
        print(json.dumps(_dict(response)))
    else:
        console.print(f"trading state: [bold]{risk_pb2.TradingState.Name(response.state)}[/bold] ({response.reason})")


@risk_app.command()
def limits(risk: str = RISK, as_json: bool = JSON) -> None:
    """The limits in force and their version."""
    response = _call(risk, lambda ch: risk_pb2_grpc.RiskServiceStub(ch).GetLimits(risk_pb2.GetLimitsRequest()))
    data = _dict(response)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table(title=f"risk limits {response.version}")
    table.add_column("limit")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(key, str(value.get("value", value) if isinstance(value, dict) else value))
    console.print(table)
