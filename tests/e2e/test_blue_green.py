"""Kafka-aware blue-green on the embedded stack with the paper exchange: a blue and a green instance of
order-management and of execution trade through a promotion to green and a rollback to blue.

Each execution colour signs in to the exchange with its own key pair (the exchange accepts both for one account), so
the broker's own record says which colour submitted each order and opened each trade stream. The test shows: no
client order id submitted twice, every order of record reached the broker or was refused with a reason, the shadow
colour never submitted nor held the trade stream, positions of record equal the broker's, and every promotion and
rollback is in the audit ledger.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from audit_service.ledger import read_entries
from paper_exchange.testing import admin_call, stack_admin_key
from tradectl.deploy import Target, flip
from tradectl.stack import SERVICES, Platform, ServiceSpec
from trading.oms.v1 import oms_pb2, oms_pb2_grpc
from trading.risk.v1 import risk_pb2, risk_pb2_grpc
from trading_platform.decimals import from_proto
from trading_platform.messaging import replay
from trading_platform.testing.waiting import rpc, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PAIRED = ("order-management", "execution")
GREEN_KEY, GREEN_SECRET = f"GREEN{uuid.uuid4().hex[:12].upper()}", uuid.uuid4().hex


def colours() -> tuple[ServiceSpec, ...]:
    specs: list[ServiceSpec] = []
    for spec in SERVICES:
        if spec.name == "gateway":  # its JWKS would replace the key the desk's tokens are signed with (conftest.py)
            continue
        if spec.name not in PAIRED:
            specs.append(spec)
            continue
        blue_green = {"TRADING_DEPLOYMENT__BLUE_GREEN": "true"}
        specs.append(dataclasses.replace(spec, env={**spec.env, **blue_green, "TRADING_DEPLOYMENT__COLOUR": "blue"}))
        green_env = {**spec.env, **blue_green, "TRADING_DEPLOYMENT__COLOUR": "green"}
        if spec.name == "execution":  # its own keys, so the broker's record tells the colours apart
            green_env |= {"TRADING_BROKER__API_KEY_ID": GREEN_KEY, "TRADING_BROKER__API_SECRET_KEY": GREEN_SECRET}
        specs.append(dataclasses.replace(spec, name=f"{spec.name}-green", service=spec.name, env=green_env))
    return tuple(specs)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    run = Platform.with_free_ports(
        tmp_path_factory.mktemp("blue-green"),
        services=colours(),
        exchange_args=("--speed", "5", "--start", "2010-01-04", "--rate-limit", "6000"),
        exchange_env={"PAPER_EXCHANGE_EXTRA_KEYS": f"{GREEN_KEY}:{GREEN_SECRET}"},
        service_env={
            **{name: {"TRADING_EXECUTION__REQUESTS_PER_MINUTE": "6000"} for name in ("execution", "execution-green")},
            # one signal, not a colour here: its policy is served in process (Ray's serving: tests/e2e/test_platform)
            "signal": {"TRADING_SIGNAL__SERVING": "local"},
        },
        extra_env={
            "TRADING_KAFKA__SESSION_TIMEOUT_MS": "2000",
            "TRADING_KAFKA__HEARTBEAT_INTERVAL_MS": "200",
            "TRADING_KAFKA__REBALANCE_TIMEOUT_MS": "1000",
        },
    )
    # Each order-management colour talks to the execution colour it is paired with.
    green_oms = run.spec("order-management-green")
    green_env = {**green_oms.env, "TRADING_OMS__EXECUTION_ADDRESS": run.spec("execution-green").address}
    run.services = tuple(
        dataclasses.replace(s, env=green_env) if s.name == "order-management-green" else s for s in run.services
    )
    try:
        states = run.up(
            timeout_s=180
        )  # a readiness deadline, not a budget: Ray and the PKI start slowly on a busy machine
        assert states and all(state == "SERVING" for state in states.values()), states
        yield run
    finally:
        run.down()


def record(platform: Platform) -> dict[str, Any]:
    endpoints = platform.stack.endpoints()
    admin_key = stack_admin_key(endpoints.vault_addr, endpoints.vault_token())
    return dict(admin_call(platform.exchange_url, admin_key, "GET", "submissions"))


def submitted_by(platform: Platform, green: bool) -> list[dict[str, Any]]:
    return [s for s in record(platform)["submissions"] if (s["key_id"] == GREEN_KEY) == green]


def switch(platform: Platform, to: str | None) -> tuple[int, int]:
    """Promote both paired services to `to` (or roll both back); returns the wall-clock window of the switch."""
    endpoints = platform.stack.endpoints()
    target = Target(endpoints.redis_url, endpoints.kafka_admin(), "")
    started = time.time_ns()
    for service in ("execution", "order-management"):
        address = platform.spec(service if (to or "blue") == "blue" else f"{service}-green").address
        action = "promote" if to else "rollback"
        # min_agreement 0: the shadow book follows its own decisions, so with the RL policy's small rebalancing orders
        # its commands drift from live's (the figure is recorded with the flip; the check itself is tested in
        # tests/cli/test_deploy.py). The shadow still has to be following, healthy and have written something.
        outcome = asyncio.run(flip(target, service, to, action, address, 0.0, False, "e2e", 60))
        assert outcome.passed, outcome.checks
    return started, time.time_ns()


def test_trades_through_a_promotion_and_a_rollback(platform: Platform) -> None:
    wait_for(lambda: len(submitted_by(platform, green=False)) >= 4, 120, "blue to trade")
    assert not submitted_by(platform, green=True), "the shadow colour submitted an order"

    promote_start, promote_done = switch(platform, "green")
    wait_for(lambda: len(submitted_by(platform, green=True)) >= 4, 120, "green to trade after the promotion")

    rollback_start, rollback_done = switch(platform, None)
    blue_after = len([s for s in submitted_by(platform, green=False) if s["received_ns"] > rollback_done])
    wait_for(
        lambda: (
            len([s for s in submitted_by(platform, green=False) if s["received_ns"] > rollback_done]) >= blue_after + 4
        ),
        120,
        "blue to trade after the rollback",
    )

    # Stop new orders, let reports settle (as an operator would before comparing books).
    asyncio.run(
        rpc(
            platform.spec("risk").address,
            lambda ch: risk_pb2_grpc.RiskServiceStub(ch).SetTradingState(
                risk_pb2.SetTradingStateRequest(
                    state=risk_pb2.TRADING_STATE_HALTED, reason="e2e settle", actor="test", cancel_open_orders=True
                )
            ),
        )
    )
    time.sleep(3)
    broker = record(platform)

    # The shadow colour never reached the broker: every green submission and trade-stream login happened while green
    # was live (between the start of the promotion and the end of the rollback), every blue one outside that window.
    for submission in broker["submissions"]:
        at = submission["received_ns"]
        if submission["key_id"] == GREEN_KEY:
            assert promote_start <= at <= rollback_done, submission
        else:
            assert not (promote_done < at < rollback_start), submission
    for login in broker["trade_stream_logins"]:
        if login["key_id"] == GREEN_KEY:
            assert promote_start <= login["at_ns"] <= rollback_done, login
        else:
            assert not (promote_done < login["at_ns"] < rollback_start), login

    # None duplicated.
    ids = [s["client_order_id"] for s in broker["submissions"]]
    assert len(ids) == len(set(ids)), "a client order id was submitted twice"

    # None lost: every order the live book sent for submission reached the broker or was refused with a reason.
    bootstrap = platform.stack.endpoints().kafka_admin()  # the broker refuses anonymous readers

    async def fates() -> tuple[set[str], set[str]]:
        sent, refused = set(), set()
        async for message in replay(bootstrap, "oms.events.v1"):
            event = message.value
            if event.order.status == oms_pb2.ORDER_STATUS_SUBMITTED:  # type: ignore[attr-defined]
                sent.add(event.order.client_order_id)  # type: ignore[attr-defined]
            if event.order.status == oms_pb2.ORDER_STATUS_REJECTED:  # type: ignore[attr-defined]
                refused.add(event.order.client_order_id)  # type: ignore[attr-defined]
        return sent, refused

    def none_lost() -> bool:
        sent, refused = asyncio.run(fates())
        return sent <= set(ids) | refused

    wait_for(none_lost, 30, "every submitted order of record to be at the broker or rejected")
    sent, _ = asyncio.run(fates())
    assert len(sent) >= 12

    # The book of record (blue, live again) equals the broker's.
    oms = platform.spec("order-management").address

    def positions_match() -> bool:
        ours = asyncio.run(
            rpc(oms, lambda ch: oms_pb2_grpc.OrderServiceStub(ch).ListPositions(oms_pb2.ListPositionsRequest()))
        )
        mine = {p.symbol: from_proto(p.quantity) for p in ours.positions if from_proto(p.quantity)}
        return mine == broker_positions(platform)

    wait_for(positions_match, 30, "positions of record to equal the paper exchange's")

    # Every flip is on the bus and in the audit ledger.
    ledger = platform.run_dir / "audit-ledger"

    def audited() -> list[Any]:
        from trading.deploy.v1 import deploy_pb2

        changes = []
        for entry in read_entries(ledger):
            if entry.topic.endswith("platform.deployments.v1"):
                changes.append(deploy_pb2.DeploymentChanged.FromString(entry.payload))
        return changes

    wait_for(lambda: len(audited()) == 4, 30, "the four flips in the audit ledger")
    flips = [(c.service, c.action, c.from_colour, c.to_colour) for c in audited()]
    assert flips == [
        ("execution", "promote", "blue", "green"),
        ("order-management", "promote", "blue", "green"),
        ("execution", "rollback", "green", "blue"),
        ("order-management", "rollback", "green", "blue"),
    ]
    assert all(any("shadow results" in check for check in c.checks) for c in audited())


def broker_positions(platform: Platform) -> dict[str, Decimal]:
    import hvac

    endpoints = platform.stack.endpoints()
    keys = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token()).secrets.kv.v2.read_secret_version(
        path="trading/alpaca", raise_on_deleted_version=True
    )["data"]["data"]
    headers = {"APCA-API-KEY-ID": keys["api_key_id"], "APCA-API-SECRET-KEY": keys["api_secret_key"]}
    response = httpx.get(f"{platform.exchange_url}/v2/positions", headers=headers, timeout=10)
    response.raise_for_status()
    return {p["symbol"]: Decimal(p["qty"]) for p in response.json()}
