"""Faults on the real stack, as `make up` runs it (embedded Apache Kafka on SASL/SCRAM, Redis, OpenBao, the paper
exchange, the six services as processes), one stack for the module.

Each test starts from a reset stack (every process up and SERVING, no exchange fault, Vault answering, the replay
clock stopped), makes orders flow (the replay clock drives bars -> signals -> orders, and a desk submits small market
orders to order-management through gRPC, ten a second), injects one fault in the middle of that, and then checks
that the platform resumed by itself (orders reach the broker again, the service's output topic grows) or failed
closed and said why, and that the invariants hold once quiet (tests/e2e/invariants.py: approvals name every
submitted order with its symbol, side and quantity; no client order id twice at the broker; every fill applied once;
positions of record equal the broker's).

The signal service serves the bundled RL policy in process (`TRADING_SIGNAL__SERVING=local`), not on Ray: a SIGKILL
of a process group would leave Ray's own daemons behind, and the module keeps to its time budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import hvac
import pytest
from aiokafka import AIOKafkaProducer
from audit_service.ledger import read_entries
from tradectl.stack import SERVICES as STACK_SERVICES
from tradectl.stack import Platform
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2, oms_pb2_grpc
from trading_platform import pki
from trading_platform.decimals import to_proto
from trading_platform.devstack import ManagedProcess
from trading_platform.identity import TRADER
from trading_platform.messaging import end_offsets, replay
from trading_platform.rpc import ClientSecurity, channel, health_status
from trading_platform.testing.identities import TestIdentities
from trading_platform.testing.waiting import wait_for
from trading_platform.topics import AUDIT, DLQ_SUFFIX, TOPICS

from tests.e2e.invariants import Broker, check

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVICES = ("market-data", "signal", "order-management", "risk", "execution", "audit")
OUTPUT = {  # the topic each service writes for every piece of work: it grows again once the service resumed
    "market-data": "marketdata.bars.v1",
    "signal": "signal.signals.v1",
    "order-management": "oms.events.v1",
    "risk": "risk.decisions.v1",
    "execution": "execution.reports.v1",
    "audit": "",  # its ledger on disk
}
DESK_SYMBOLS = ("AAPL", "MSFT", "IBM", "GOOG")
SPEED = 5.0  # simulated minutes per second while orders flow


class Clock(threading.Thread):
    """Drives the paper exchange's replay clock (it runs with --speed 0): SPEED minutes per second until stopped."""

    def __init__(self, broker: Broker) -> None:
        super().__init__(daemon=True, name="fault-clock")
        self.broker, self.halt = broker, threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0 / SPEED):
            with contextlib.suppress(Exception):
                self.broker.admin("POST", "advance", params={"minutes": 1})


class Desk(threading.Thread):
    """Submits small market orders to order-management, ten a second, alternating buy and sell per symbol so the
    book stays flat. Refusals (order-management down, risk down, blocked) are counted, not raised."""

    def __init__(self, address: str, security: ClientSecurity) -> None:
        super().__init__(daemon=True, name="fault-desk")
        self.address, self.security, self.halt = address, security, threading.Event()
        self.answers: dict[str, int] = {}

    def run(self) -> None:
        asyncio.run(self.submit_until_halted())

    async def submit_until_halted(self) -> None:
        sides = itertools.cycle([common_pb2.ORDER_SIDE_BUY] * 4 + [common_pb2.ORDER_SIDE_SELL] * 4)
        for symbol, side in zip(itertools.cycle(DESK_SYMBOLS), sides, strict=False):
            await asyncio.sleep(0.1)
            if self.halt.is_set():
                return
            request = oms_pb2.SubmitOrderRequest(
                symbol=symbol,
                side=side,
                quantity=to_proto("5"),
                order_type=common_pb2.ORDER_TYPE_MARKET,
                time_in_force=common_pb2.TIME_IN_FORCE_DAY,
                decision_id=f"fault-desk-{uuid.uuid4().hex}",
                strategy_id="fault-desk",
            )
            try:
                async with channel(self.address, 5.0, security=self.security) as oms:
                    answer = await oms_pb2_grpc.OrderServiceStub(oms).SubmitOrder(request)
                outcome = answer.reason_code or "?"
            except Exception as error:
                outcome = type(error).__name__
            self.answers[outcome] = self.answers.get(outcome, 0) + 1


class FaultStack:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.broker = Broker(platform)  # reads the keys from Vault now, before any test freezes it
        endpoints = platform.stack.endpoints()
        self.admin = endpoints.kafka_admin()
        # A trader of the desk (a user token signed by a key published where the gateway publishes its JWKS), on the
        # operator's certificate from the platform's PKI: what the desk submits with and the invariants read with.
        identities = TestIdentities(endpoints.vault_addr, endpoints.vault_token(), endpoints.redis_url)
        self.trader = platform.grpc_client(token=identities.user_token("fault-desk", roles=[TRADER], ttl_s=3600))

    # -- the reset between faults --------------------------------------------------------------------------------
    def reset(self) -> None:
        """Every process up and SERVING, Vault answering, no exchange fault, the clock stopped."""
        vault = self.platform.stack.vault.pid()
        if vault is not None:
            os.kill(vault, signal.SIGCONT)
        if not all(p.running() for p in (self.platform.stack.kafka, self.platform.stack.redis)):
            self.platform.stack.up()
        self.broker.admin("PUT", "faults", json={"unresponsive_s": 0, "refuse_streams": False})
        wait_for(lambda: self.broker.admin("GET", "faults")["unresponsive_for_s"] == 0, 40, "the exchange to answer")
        for name in SERVICES:
            assert self.platform.start_service(name) == "SERVING", self.platform.process(name).log_tail()

    @contextlib.contextmanager
    def trading(self) -> Iterator[Desk]:
        clock, desk = Clock(self.broker), Desk(self.platform.spec("order-management").address, self.trader)
        clock.start()
        desk.start()
        try:
            yield desk
        finally:
            desk.halt.set()
            clock.halt.set()
            desk.join(timeout=30)
            clock.join(timeout=30)

    # -- observing -----------------------------------------------------------------------------------------------
    def wait_orders(self, more: int, timeout_s: float, what: str) -> None:
        """Wait until `more` further orders reached the broker."""
        start = self.broker.submitted()
        wait_for(
            lambda: self.broker.submitted() >= start + more, timeout_s, f"{more} more orders at the broker ({what})"
        )

    def output_end(self, service: str) -> int:
        if service == "audit":
            return sum(1 for _ in read_entries(self.platform.run_dir / "audit-ledger"))
        ends = asyncio.run(end_offsets(self.admin, [OUTPUT[service]]))
        return sum(ends.get(OUTPUT[service], {}).values())

    def wait_output(self, service: str, timeout_s: float) -> None:
        start = self.output_end(service)
        wait_for(
            lambda: self.output_end(service) > start,
            timeout_s,
            f"{service} to write {OUTPUT[service] or 'its ledger'} again",
        )

    def supervise(self, done: Callable[[], bool], timeout_s: float, what: str) -> dict[str, str]:
        """Wait for `done`, restarting (as a supervisor would) every service that exited meanwhile; returns the
        services that exited, each with the last error it logged (why it stopped)."""
        exits: dict[str, str] = {}
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}; exits: {exits}"
            for name in SERVICES:
                process = self.platform.process(name)
                if not process.running():
                    exits[name] = last_error(process)
                    print(f"{name} exited ({exits[name]}); restarting it as a supervisor would")
                    assert self.platform.start_service(name) == "SERVING", process.log_tail()
            time.sleep(0.5)
        return exits

    def health(self, name: str) -> str:
        address = self.platform.spec(name).address
        return asyncio.run(health_status(address, timeout_s=1.0, security=self.platform.grpc_client()))

    def kill(self, process: ManagedProcess) -> None:
        pid = process.pid()
        assert pid is not None, f"{process.name} is not running"
        os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: not process.running(), 10, f"{process.name} to die")

    def invariants(self, timeout_s: float = 45.0) -> None:
        found = check(self.platform, self.broker, self.trader, timeout_s)
        assert not found, "\n".join(found[:20])


def last_error(process: ManagedProcess) -> str:
    """The last error-level event a service logged: why it stopped, when it stopped by itself."""
    for line in reversed(process.log_file.read_text(errors="replace").splitlines()):
        if line.startswith("{") and '"level": "error"' in line:
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(line)
                return f"{event.get('event')}: {event.get('reason') or event.get('error') or ''}".strip(": ")
    return ""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    platform = Platform.with_free_ports(
        tmp_path_factory.mktemp("faults"),
        # The six services of the order path; the gateway (users and their tokens) is left out: the desk's token is
        # signed by a key published where the gateway publishes its JWKS (TestIdentities), as the gateway's would be.
        services=tuple(spec for spec in STACK_SERVICES if spec.name in SERVICES),
        exchange_args=("--speed", "0", "--start", "2010-01-04", "--rate-limit", "6000"),
        service_env={
            "execution": {"TRADING_EXECUTION__REQUESTS_PER_MINUTE": "6000"},
            "signal": {"TRADING_SIGNAL__SERVING": "local"},
            # Finding (docs/reliability.md): risk ages a bar by its event time against the wall clock, so the paper
            # exchange's replayed bars (2010) are all "too old" and every order is denied. Until that is fixed, the
            # age limit is lifted here so that the faults below are tried on a platform that trades.
            "risk": {"TRADING_RISK__MAX_MARKET_DATA_AGE_S": "10000000000"},
        },
        extra_env={
            "TRADING_KAFKA__SESSION_TIMEOUT_MS": "2000",
            "TRADING_KAFKA__HEARTBEAT_INTERVAL_MS": "200",
            "TRADING_KAFKA__REBALANCE_TIMEOUT_MS": "1000",
        },
    )
    try:
        states = platform.up(timeout_s=180)  # a readiness deadline, not a budget
        assert states and all(state == "SERVING" for state in states.values()), states
        faults = FaultStack(platform)
        faults.broker.admin("POST", "advance", params={"minutes": 30})  # bars for sizing, features and risk
        with faults.trading():  # past order-management's first reconciliation
            faults.wait_orders(3, 60, "the platform to trade")
        yield faults
    finally:
        vault = platform.stack.vault.pid()
        if vault is not None:
            os.kill(vault, signal.SIGCONT)
        platform.down()


@pytest.mark.parametrize("service", SERVICES)
def test_sigkill_in_the_middle_of_an_order(stack: FaultStack, service: str) -> None:
    stack.reset()
    with stack.trading():
        stack.wait_orders(3, 30, "before the kill")
        stack.kill(stack.platform.process(service))
        assert stack.platform.start_service(service) == "SERVING", stack.platform.process(service).log_tail()
        stack.wait_orders(3, 60, f"after {service} restarted")
        stack.wait_output(service, 60)
    stack.invariants()


@pytest.mark.xfail(
    reason="finding (docs/reliability.md): after a broker restart an aiokafka idempotent producer can stay stuck on "
    "OutOfOrderSequenceNumber (aio-libs/aiokafka#1017): signal then dead-letters every bar and publishes no signal "
    "while it reports SERVING; seen in most runs, not all",
    strict=False,
)
def test_kafka_broker_restart(stack: FaultStack) -> None:
    """The broker stops (SIGTERM, a controlled shutdown) and starts again on the same data. Each service either
    carries on by itself or fails closed: it exits having logged why. The test then plays the supervisor (Kubernetes
    restarts a pod that exits) and the order path must resume: orders at the broker, every service's output grows."""
    stack.reset()
    try:
        with stack.trading():
            stack.wait_orders(3, 30, "before the broker restart")
            assert stack.platform.stack.kafka.stop(timeout_s=30)
            stack.platform.stack.up(timeout_s=90)
            start = stack.broker.submitted()
            exits = stack.supervise(lambda: stack.broker.submitted() >= start + 3, 120, "orders after the restart")
            for name in SERVICES:
                wait_for(lambda n=name: stack.health(n) == "SERVING", 60, f"{name} to serve again")
                stack.wait_output(name, 60)  # and to do its work again: bars, signals, decisions, orders, reports
        for name, said in exits.items():
            assert said, f"{name} exited after the broker restart without saying why"
    finally:  # whatever this fault left behind, the next test starts from fresh processes
        for name in SERVICES:
            stack.platform.process(name).stop()
    stack.reset()
    stack.invariants()


def test_redis_killed_and_restarted(stack: FaultStack) -> None:
    """Redis (token revocations, idempotency stores) is killed and started again, empty. While it is away a user's
    call may be refused (the revocation list cannot be read: fail closed); once it is back the order path resumes
    by itself and every service serves."""
    stack.reset()
    with stack.trading() as desk:
        stack.wait_orders(3, 30, "before Redis is killed")
        stack.kill(stack.platform.stack.redis)
        before = dict(desk.answers)
        wait_for(lambda: sum(desk.answers.values()) >= sum(before.values()) + 20, 30, "the desk to keep asking")
        during = {k: v - before.get(k, 0) for k, v in desk.answers.items() if v - before.get(k, 0)}
        print(f"desk answers while Redis was down: {during}")
        stack.platform.stack.up(timeout_s=60)
        stack.wait_orders(3, 60, "after Redis is back")
        for name in SERVICES:
            wait_for(lambda n=name: stack.health(n) == "SERVING", 30, f"{name} to serve")
    stack.invariants()


@contextlib.contextmanager
def vault_frozen(stack: FaultStack) -> Iterator[None]:
    """Vault stops answering (SIGSTOP: connections are accepted, nothing is answered), then resumes with its state."""
    pid = stack.platform.stack.vault.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_vault_unavailable_at_start_fails_closed_and_says_why(stack: FaultStack) -> None:
    stack.reset()
    risk = stack.platform.process("risk")
    risk.stop()
    with vault_frozen(stack):
        assert stack.platform.start_service("risk", timeout_s=60) == "EXITED"
        said = risk.log_tail(15)
    assert "vault" in said.lower(), said
    assert stack.platform.start_service("risk") == "SERVING", risk.log_tail()
    with stack.trading():
        stack.wait_orders(3, 60, "after risk started with Vault back")
    stack.invariants()


def renewals(process: ManagedProcess) -> list[dict[str, Any]]:
    """The certificate renewal events in a service's log, in order (renewed, or a failed attempt)."""
    found = []
    for line in process.log_file.read_text(errors="replace").splitlines():
        if '"certificate renew' in line:
            with contextlib.suppress(json.JSONDecodeError):
                found.append(json.loads(line))
    return found


def test_vault_unavailable_during_a_certificate_renewal(stack: FaultStack) -> None:
    """risk's certificate is made short-lived (its PKI role's TTL 60 s; a service renews at two thirds of the
    lifetime and retries every 5 s). Vault stops answering until risk's renewal has failed in the outage, then answers
    again: risk retries, renews before its certificate expires, keeps serving, and orders go on. (With a lifetime so
    short that the first failed attempt ends within 5 s of the expiry, risk stops instead, saying "certificate of risk
    expired and could not be renewed: ...": failing closed.)"""
    stack.reset()
    endpoints = stack.platform.stack.endpoints()
    vault = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
    role = vault.secrets.pki.read_role("risk", mount_point=pki.INTERMEDIATE_MOUNT)["data"]
    risk = stack.platform.process("risk")
    try:
        short = {**role, "ttl": "60s", "max_ttl": "60s"}
        vault.secrets.pki.create_or_update_role("risk", short, mount_point=pki.INTERMEDIATE_MOUNT)
        risk.stop()
        assert stack.platform.start_service("risk") == "SERVING", risk.log_tail()
        with stack.trading():
            before = len(renewals(risk))
            with vault_frozen(stack):
                wait_for(lambda: len(renewals(risk)) > before, 70, "risk's renewal to fail while Vault is away")
            wait_for(
                lambda: any(e["event"] == "certificate renewed" for e in renewals(risk)[before:]),
                20,
                "the late renewal",
            )
            events = [e["event"] for e in renewals(risk)[before:]]
            assert events[0] == "certificate renewal failed: retrying", events
            assert "certificate renewal failed: stopping" not in events, events
            assert stack.health("risk") == "SERVING"
            stack.wait_orders(3, 30, "after the late renewal")
    finally:
        vault.secrets.pki.create_or_update_role("risk", role, mount_point=pki.INTERMEDIATE_MOUNT)
    stack.invariants()


def test_paper_exchange_stops_answering_for_30_s(stack: FaultStack) -> None:
    stack.reset()
    with stack.trading():
        stack.wait_orders(3, 30, "before the exchange goes silent")
        stack.broker.admin("PUT", "faults", json={"unresponsive_s": 30})
        wait_for(lambda: stack.broker.admin("GET", "faults")["unresponsive_for_s"] == 0, 40, "the silence to end")
        stack.wait_orders(3, 60, "after the exchange answers again")
        stack.wait_output("execution", 30)
    stack.invariants(timeout_s=60)


def consumed_topics() -> dict[str, tuple[str, ...]]:
    """Every registry topic a service of this stack consumes, with the principals of the stack that read it (audit
    reads all of them). Readers the stack does not run (the gateway, analytics) cannot dead-letter anything here."""
    consumed = {}
    for name, topic in TOPICS.items():
        running = tuple(reader for reader in topic.readers if reader in SERVICES)
        if running:
            consumed[name] = (*running, AUDIT)
    return consumed


async def send_poison(stack: FaultStack, topics: list[str]) -> dict[str, set[tuple[int, int]]]:
    """Two records no consumer can handle on each topic (bytes that are no protobuf; a message without an
    envelope), written as the cluster admin; returns each topic's (partition, offset) of them."""
    producer = AIOKafkaProducer(**stack.admin.client_options(), enable_idempotence=True, acks="all")
    await producer.start()
    sent: dict[str, set[tuple[int, int]]] = {}
    try:
        for topic in topics:
            for value in (b"\xff\xfe not a protobuf \x00\x01", b""):
                done = await producer.send_and_wait(topic, value=value, key=b"poison")
                sent.setdefault(topic, set()).add((done.partition, done.offset))
    finally:
        await producer.stop()
    return sent


async def dead_letters(stack: FaultStack, topic: str) -> dict[tuple[int, int], dict[str, str]]:
    """The dead letters of a topic: (partition, offset) of the record -> consumer group -> reason code."""
    found: dict[tuple[int, int], dict[str, str]] = {}
    async for message in replay(stack.admin, topic + DLQ_SUFFIX):
        letter: Any = message.value
        found.setdefault((letter.source_partition, letter.source_offset), {})[letter.consumer_group] = (
            letter.reason_code if letter.reason else ""
        )
    return found


def test_poison_messages_go_to_the_dead_letter_topic_and_every_consumer_goes_on(stack: FaultStack) -> None:
    stack.reset()
    readers = consumed_topics()
    with stack.trading():
        stack.wait_orders(3, 30, "before the poison")
        sent = asyncio.run(send_poison(stack, list(readers)))

        def missing() -> list[str]:
            gaps = []
            for topic, records in sent.items():
                letters = asyncio.run(dead_letters(stack, topic))
                for record in records:
                    groups = letters.get(record, {})
                    for reader in readers[topic]:
                        if not any(group.startswith(reader) and code for group, code in groups.items()):
                            gaps.append(f"{topic} {record}: no dead letter with a reason from {reader} (has {groups})")
            return gaps

        with contextlib.suppress(AssertionError):
            wait_for(lambda: not missing(), 60, "every consumer to dead-letter the poison", interval_s=2)
        assert not missing(), "\n".join(missing())
        stack.wait_orders(3, 30, "after the poison")
        for service in ("signal", "order-management", "risk", "execution"):
            stack.wait_output(service, 30)
    assert {name: stack.health(name) for name in SERVICES} == dict.fromkeys(SERVICES, "SERVING")
    stack.invariants()
