"""The order path's invariants (docs/architecture.md section 4), read from the running platform's own records: the
topics, decoded with the registry as the cluster admin reads them, and the paper exchange's record of what reached
it (`/admin/submissions`, `/v2/positions`, `/v2/orders`).

`check(platform)` waits until the platform is quiet (no open order at the broker or in the book, the fills of
record equal the broker's) and returns every violation found, each a sentence naming the order or symbol:

1. no order reached the broker without an approved risk decision naming its client order id with the same symbol,
   side and quantity;
2. no client order id was submitted twice;
3. every broker fill is counted exactly once: per order, the fills order-management applied (oms.events.v1) add up
   to what the broker filled, and no fill id is applied twice;
4. the positions of record (order-management's ListPositions) equal the broker's.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import hvac
from paper_exchange.testing import admin_call, stack_admin_key
from tradectl.stack import Platform
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2, oms_pb2_grpc
from trading_platform.decimals import from_proto
from trading_platform.messaging import replay
from trading_platform.rpc import ClientSecurity, channel

SIDES = {common_pb2.ORDER_SIDE_BUY: "buy", common_pb2.ORDER_SIDE_SELL: "sell"}
FILL_EVENTS = (oms_pb2.ORDER_EVENT_TYPE_PARTIALLY_FILLED, oms_pb2.ORDER_EVENT_TYPE_FILLED)
OPEN_STATUSES = [
    oms_pb2.ORDER_STATUS_INITIALIZED,
    oms_pb2.ORDER_STATUS_SUBMITTED,
    oms_pb2.ORDER_STATUS_ACCEPTED,
    oms_pb2.ORDER_STATUS_PARTIALLY_FILLED,
    oms_pb2.ORDER_STATUS_PENDING_CANCEL,
]


class Broker:
    """The paper exchange's own record, read with the platform's API keys from the dev Vault."""

    def __init__(self, platform: Platform) -> None:
        endpoints = platform.stack.endpoints()
        client = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token(), timeout=5)
        keys = client.secrets.kv.v2.read_secret_version(path="trading/alpaca", raise_on_deleted_version=True)
        self.url = platform.exchange_url
        self.headers = {
            "APCA-API-KEY-ID": keys["data"]["data"]["api_key_id"],
            "APCA-API-SECRET-KEY": keys["data"]["data"]["api_secret_key"],
        }
        self.admin_key = stack_admin_key(endpoints.vault_addr, endpoints.vault_token())

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}{path}", headers=self.headers, params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        return admin_call(self.url, self.admin_key, method, path, **kwargs)

    def record(self) -> dict[str, Any]:
        return self.admin("GET", "submissions")  # type: ignore[no-any-return]

    def submitted(self) -> int:
        return len(self.record()["submissions"])

    def positions(self) -> dict[str, Decimal]:
        return {p["symbol"]: Decimal(p["qty"]) for p in self.get("/v2/positions") if Decimal(p["qty"])}

    def open_orders(self) -> int:
        return len(self.get("/v2/orders", status="open", limit=500))


@dataclass
class Evidence:
    """What the invariants are checked against, gathered at one moment."""

    submissions: list[dict[str, Any]]
    broker_filled: dict[str, Decimal]  # client order id -> quantity the broker filled
    broker_positions: dict[str, Decimal]
    approvals: dict[str, set[tuple[str, str, Decimal]]]  # client order id -> (symbol, side, quantity) approved
    applied_fills: list[tuple[str, str, Decimal]]  # (client order id, fill id, quantity) in oms.events.v1
    positions_of_record: dict[str, Decimal]
    open_of_record: int
    broker_open: int
    notes: list[str] = field(default_factory=list)


def gather(platform: Platform, broker: Broker, security: ClientSecurity) -> Evidence:
    record = broker.record()
    cid_of = {s["order_id"]: s["client_order_id"] for s in record["submissions"]}
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for fill in record["fills"]:
        filled[cid_of.get(fill["order_id"], fill["order_id"])] += Decimal(fill["qty"])
    approvals, applied = asyncio.run(_from_topics(platform))
    positions, open_orders = asyncio.run(_book(platform, security))
    return Evidence(
        submissions=record["submissions"],
        broker_filled=dict(filled),
        broker_positions=broker.positions(),
        approvals=approvals,
        applied_fills=applied,
        positions_of_record=positions,
        open_of_record=open_orders,
        broker_open=broker.open_orders(),
    )


async def _from_topics(
    platform: Platform,
) -> tuple[dict[str, set[tuple[str, str, Decimal]]], list[tuple[str, str, Decimal]]]:
    admin = platform.stack.endpoints().kafka_admin()  # the broker refuses anonymous readers
    approvals: dict[str, set[tuple[str, str, Decimal]]] = defaultdict(set)
    async for message in replay(admin, "risk.decisions.v1"):
        decision: Any = message.value
        if decision.approved:
            approvals[decision.client_order_id].add(
                (decision.symbol, SIDES.get(decision.side, "?"), from_proto(decision.quantity) or Decimal(0))
            )
    applied = []
    async for message in replay(admin, "oms.events.v1"):
        event: Any = message.value
        if event.event_type in FILL_EVENTS and event.fill_id:
            applied.append((event.client_order_id, event.fill_id, from_proto(event.last_quantity) or Decimal(0)))
    return dict(approvals), applied


async def _book(platform: Platform, security: ClientSecurity) -> tuple[dict[str, Decimal], int]:
    async with channel(platform.spec("order-management").address, 5.0, security=security) as oms:
        stub = oms_pb2_grpc.OrderServiceStub(oms)
        positions = await stub.ListPositions(oms_pb2.ListPositionsRequest())
        orders = await stub.ListOrders(oms_pb2.ListOrdersRequest(statuses=OPEN_STATUSES))
    held = {p.symbol: from_proto(p.quantity) for p in positions.positions}
    return {symbol: qty for symbol, qty in held.items() if qty}, len(orders.orders)


def violations(evidence: Evidence) -> list[str]:
    found = []
    for submission in evidence.submissions:
        cid = submission["client_order_id"]
        wanted = (submission["symbol"], submission["side"], Decimal(submission["qty"] or 0))
        approved = evidence.approvals.get(cid, set())
        if not approved:
            found.append(f"{cid} reached the broker without an approved risk decision naming it")
        elif wanted not in approved:
            found.append(f"{cid} reached the broker as {wanted}, but risk approved {sorted(approved)}")
    for cid, times in Counter(s["client_order_id"] for s in evidence.submissions).items():
        if times > 1:
            found.append(f"{cid} was submitted to the broker {times} times")
    for (cid, fill_id), times in Counter((cid, fill_id) for cid, fill_id, _ in evidence.applied_fills).items():
        if times > 1:
            found.append(f"fill {fill_id} of {cid} was applied {times} times")
    applied: dict[str, Decimal] = defaultdict(Decimal)
    for cid, _, quantity in evidence.applied_fills:
        applied[cid] += quantity
    for cid in sorted(set(applied) | set(evidence.broker_filled)):
        if applied.get(cid, Decimal(0)) != evidence.broker_filled.get(cid, Decimal(0)):
            found.append(
                f"{cid}: the broker filled {evidence.broker_filled.get(cid, Decimal(0))}, the book of record applied "
                f"{applied.get(cid, Decimal(0))}"
            )
    if evidence.positions_of_record != evidence.broker_positions:
        symbols = sorted(set(evidence.positions_of_record) | set(evidence.broker_positions))
        differ = {
            s: (str(evidence.positions_of_record.get(s, 0)), str(evidence.broker_positions.get(s, 0)))
            for s in symbols
            if evidence.positions_of_record.get(s, Decimal(0)) != evidence.broker_positions.get(s, Decimal(0))
        }
        found.append(f"positions of record differ from the broker's (record, broker): {differ}")
    return found


def quiet(evidence: Evidence) -> bool:
    return evidence.open_of_record == 0 and evidence.broker_open == 0 and not violations(evidence)


def check(platform: Platform, broker: Broker, security: ClientSecurity, timeout_s: float = 30.0) -> list[str]:
    """Wait (up to timeout_s) for the platform to be quiet, then return the violations (none once quiet). A platform
    that never gets quiet returns what stands at the deadline, plus the open orders. `security`: a gRPC client of
    the platform allowed to read order-management's book (a user token with a reader role)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            evidence = gather(platform, broker, security)
        except Exception as error:  # a service still starting: try again until the deadline
            if time.monotonic() > deadline:
                return [f"the record could not be read: {type(error).__name__}: {error}"]
            time.sleep(0.5)
            continue
        if quiet(evidence) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    found = violations(evidence)
    if evidence.open_of_record or evidence.broker_open:
        found.append(
            f"not quiet after {timeout_s:.0f} s: {evidence.open_of_record} open orders of record, "
            f"{evidence.broker_open} at the broker"
        )
    return found
