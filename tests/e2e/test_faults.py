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
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from audit_service.ledger import read_entries
from tradectl.stack import Platform
from trading.common.v1 import common_pb2
from trading.oms.v1 import oms_pb2, oms_pb2_grpc
from trading_platform.decimals import to_proto
from trading_platform.devstack import ManagedProcess
from trading_platform.messaging import end_offsets, replay
from trading_platform.rpc import health_status
from trading_platform.testing.waiting import rpc, wait_for
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

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True, name="fault-desk")
        self.address, self.halt = address, threading.Event()
        self.answers: dict[str, int] = {}

    def run(self) -> None:
        sides = itertools.cycle([common_pb2.ORDER_SIDE_BUY] * 4 + [common_pb2.ORDER_SIDE_SELL] * 4)
        for symbol, side in zip(itertools.cycle(DESK_SYMBOLS), sides, strict=False):
            if self.halt.wait(0.1):
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
                answer = asyncio.run(
                    rpc(self.address, lambda ch, r=request: oms_pb2_grpc.OrderServiceStub(ch).SubmitOrder(r))
                )
                outcome = answer.reason_code or "?"
            except Exception as error:
                outcome = type(error).__name__
            self.answers[outcome] = self.answers.get(outcome, 0) + 1


class FaultStack:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.broker = Broker(platform)  # reads the keys from Vault now, before any test freezes it
        self.admin = platform.stack.endpoints().kafka_admin()

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
        clock, desk = Clock(self.broker), Desk(self.platform.spec("order-management").address)
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

    def health(self, name: str) -> str:
        return asyncio.run(health_status(self.platform.spec(name).address, timeout_s=1.0))

    def kill(self, process: ManagedProcess) -> None:
        pid = process.pid()
        assert pid is not None, f"{process.name} is not running"
        os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: not process.running(), 10, f"{process.name} to die")

    def invariants(self, timeout_s: float = 45.0) -> None:
        found = check(self.platform, self.broker, timeout_s)
        assert not found, "\n".join(found[:20])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    platform = Platform.with_free_ports(
        tmp_path_factory.mktemp("faults"),
        exchange_args=("--speed", "0", "--start", "2010-01-04", "--rate-limit", "6000"),
        service_env={
            "execution": {"TRADING_EXECUTION__REQUESTS_PER_MINUTE": "6000"},
            "signal": {"TRADING_SIGNAL__SERVING": "local"},
        },
        extra_env={
            "TRADING_KAFKA__SESSION_TIMEOUT_MS": "2000",
            "TRADING_KAFKA__HEARTBEAT_INTERVAL_MS": "200",
            "TRADING_KAFKA__REBALANCE_TIMEOUT_MS": "1000",
        },
    )
    try:
        states = platform.up(timeout_s=60)
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


def test_kafka_broker_restart(stack: FaultStack) -> None:
    stack.reset()
    with stack.trading():
        stack.wait_orders(3, 30, "before the broker restart")
        assert stack.platform.stack.kafka.stop(timeout_s=30)  # SIGTERM: a controlled shutdown, then the same data
        stack.platform.stack.up()
        stack.wait_orders(3, 90, "after the broker restart")
        for name in SERVICES:
            wait_for(lambda n=name: stack.health(n) == "SERVING", 60, f"{name} to serve again")
    stack.invariants()


def test_redis_killed_and_restarted(stack: FaultStack) -> None:
    stack.reset()
    with stack.trading():
        stack.wait_orders(3, 30, "before Redis is killed")
        stack.kill(stack.platform.stack.redis)
        stack.wait_orders(1, 30, "while Redis is down (the order path does not need it)")
        stack.platform.stack.up()
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


def test_vault_unavailable_while_running(stack: FaultStack) -> None:
    """The services read their secrets at start; Vault going away while they run (when a token renewal would fall
    due) must not stop the order path."""
    stack.reset()
    with stack.trading(), vault_frozen(stack):
        stack.wait_orders(10, 60, "while Vault does not answer")
        assert {name: stack.health(name) for name in SERVICES} == dict.fromkeys(SERVICES, "SERVING")
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
    """Every registry topic a service consumes, with the principals that read it (audit reads all of them)."""
    return {name: (*topic.readers, AUDIT) for name, topic in TOPICS.items() if topic.readers}


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
