"""The platform as `make up` runs it, with a desk of users, for the browser tests and the dashboard benchmarks.

`running_platform(run_dir)` starts the embedded stack, the paper exchange, the gateway and every service (like
tests/e2e, with free ports; signal serves its policy in process rather than on Ray) and stops them after. `Desk.bootstrap(platform)` makes the first admin with the one-time
secret `up` left in the dev Vault (as `tradectl users bootstrap` does), then, as that admin, a user of each role;
every one but the viewer logs in with a TOTP code. `chromium()` is the browser the tests drive by its path (Debian's
package: no browser is downloaded)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import hvac
import pyotp
from tradectl.stack import SERVICES, Platform

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports" / "browser"
PASSWORD = "a long enough desk passphrase"  # pragma: allowlist secret (the browser tests' throwaway users)
ROLES = {
    "admin": ("admin",),
    "vera": ("viewer",),
    "tom": ("trader", "viewer"),
    "rita": ("risk-officer", "viewer"),
    "rob": ("risk-officer", "viewer"),
    "mona": ("model-manager", "viewer"),
}
# A cheap Argon2id for the test users (the gateway's cost is its own config; logins here are many).
GATEWAY_ENV = {"TRADING_GATEWAY__ARGON2_MEMORY_KIB": "8192", "TRADING_GATEWAY__ARGON2_TIME_COST": "1"}


def run_async(coroutine: Any) -> Any:
    """asyncio.run in a thread of its own: Playwright's sync API keeps an event loop running in the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def in_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
    """A call that runs asyncio itself (Platform.up), from a test whose thread Playwright's loop holds."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def chromium() -> str | None:
    """TRADING_CHROMIUM, else `chromium` on PATH (Debian's package), else None."""
    return os.environ.get("TRADING_CHROMIUM") or shutil.which("chromium")


@contextlib.contextmanager
def running_platform(run_dir: Path, timeout_s: float = 240) -> Iterator[Platform]:
    # The policy is served in process (the pages show the same versions either way): Ray's start was half of the
    # platform's (33 of 64 s measured here), and its processes compete with the browser for the two cores.
    run = Platform.with_free_ports(
        run_dir,
        services=SERVICES,
        service_env={"gateway": dict(GATEWAY_ENV), "signal": {"TRADING_SIGNAL__SERVING": "local"}},
    )
    # the services the gateway relays writes and audit queries to, at this platform's ports (not the defaults)
    run.per_service_env["gateway"].update(
        {
            "TRADING_GATEWAY__RISK_ADDRESS": run.spec("risk").address,
            "TRADING_GATEWAY__OMS_ADDRESS": run.spec("order-management").address,
            "TRADING_GATEWAY__AUDIT_ADDRESS": run.spec("audit").address,
        }
    )
    try:
        # a readiness deadline, not a budget: Ray and the PKI start slowly on a busy machine
        states = run.up(timeout_s=timeout_s)
        if any(state != "SERVING" for state in states.values()):
            # once more for a service that could not start on a loaded machine (Ray's node start has timed out
            # here): `up` starts only what is not running
            states = run.up(timeout_s=timeout_s)
        failed = {name: state for name, state in states.items() if state != "SERVING"}
        if set(failed) == {"signal"}:
            # Ray's node start times out on an overloaded machine (seen here at a load of 20+ on 2 cores). The
            # dashboard's flows do not need a served policy (the tests place their own orders); the models page
            # then has no model to show, and the tests say so.
            warnings.warn(f"signal did not start: {run.process('signal').log_tail(3)}", stacklevel=2)
            failed = {}
        if failed:
            tails = "\n".join(f"--- {name}\n{run.process(name).log_tail(30)}" for name in failed)
            raise RuntimeError(f"not serving: {failed}\n{tails}")
        yield run
    finally:
        run.down()


@dataclass
class User:
    username: str
    roles: tuple[str, ...]
    totp_secret: str | None
    used: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def code(self) -> str:
        """A TOTP code of this step or a neighbour that was not used yet (the gateway takes each code once); waits
        for the next step when all three are spent."""
        if self.totp_secret is None:
            return ""
        totp = pyotp.TOTP(self.totp_secret)
        with self.lock:
            while True:
                for offset in (0, 1, -1):
                    code = totp.at(time.time() + 30 * offset)
                    if code not in self.used:
                        self.used.add(code)
                        return code
                time.sleep(1)


class Desk:
    """The users of one platform, by name; `token(name)` logs in over the API."""

    def __init__(self, platform: Platform, users: dict[str, User]) -> None:
        self.platform = platform
        self.url = platform.gateway_url
        self.users = users

    def __getitem__(self, name: str) -> User:
        return self.users[name]

    def login(self, name: str) -> dict[str, Any]:
        user = self.users[name]
        body: dict[str, Any] = {"username": user.username, "password": PASSWORD}
        if user.totp_secret:
            body["totp_code"] = user.code()
        answer = httpx.post(f"{self.url}/api/v1/auth/login", json=body, timeout=30)
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    def token(self, name: str) -> str:
        return str(self.login(name)["access_token"])

    def api(self, name: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(name)}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    @classmethod
    def bootstrap(cls, platform: Platform) -> Desk:
        endpoints = platform.stack.endpoints()
        vault = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
        secret = vault.secrets.kv.v2.read_secret_version(
            path="trading/gateway/bootstrap", raise_on_deleted_version=True
        )["data"]["data"]["secret"]
        url = platform.gateway_url
        made = httpx.post(
            f"{url}/api/v1/auth/bootstrap",
            json={"secret": secret, "username": "admin", "password": PASSWORD},
            timeout=30,
        )
        made.raise_for_status()
        users = {"admin": User("admin", ROLES["admin"], made.json()["totp_secret"])}
        desk = cls(platform, users)
        admin = {"Authorization": f"Bearer {desk.token('admin')}"}
        for name, roles in ROLES.items():
            if name == "admin":
                continue
            created = httpx.post(
                f"{url}/api/v1/users",
                json={"username": name, "roles": list(roles), "password": PASSWORD},
                headers=admin,
                timeout=30,
            )
            created.raise_for_status()
            secret_of = created.json().get("totp_secret")
            users[name] = User(name, roles, None if roles == ("viewer",) else secret_of)
        return desk


TOPIC = "oms.events.v1"


class BusTail:
    """The fills on oms.events.v1 from now on, each with the time the broker recorded it (the record's timestamp,
    ms), read in a thread of its own as the operator of the dev stack."""

    def __init__(self, platform: Platform) -> None:
        self.connection = platform.stack.endpoints().kafka_admin()
        self.fills: dict[str, tuple[float, str]] = {}  # fill id -> (record timestamp ms, client order id)
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> BusTail:
        self.thread.start()
        if not self.ready.wait(90):
            raise RuntimeError(f"the bus tail did not start: {self.error!r}")
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(30)

    async def _run(self) -> None:
        try:
            await self._tail()
        except BaseException as error:  # told to the test by __enter__ (or lost: the test then waits in vain)
            self.error = error
            raise

    async def _tail(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from trading.oms.v1 import oms_pb2
        from trading_platform.messaging.connection import CLIENT_TIMEOUTS, start_client

        consumer = AIOKafkaConsumer(
            **self.connection.client_options(),
            **CLIENT_TIMEOUTS,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await start_client(consumer.start, self.connection, 60)
        try:
            # a consumer without a subscription knows no topic until told to track it
            consumer._client.add_topic(TOPIC)
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or ())]
            if not partitions:
                raise RuntimeError(f"{TOPIC} has no partitions")
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:
                await consumer.position(tp)
            self.ready.set()
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        event = oms_pb2.OrderEvent.FromString(record.value)
                        if event.fill_id:
                            self.fills[event.fill_id] = (float(record.timestamp), event.client_order_id)
        finally:
            await consumer.stop()

    def wait_for_fill(self, client_order_id: str, timeout_s: float) -> tuple[str, float]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for fill_id, (ts_ms, cid) in list(self.fills.items()):
                if cid == client_order_id:
                    return fill_id, ts_ms
            time.sleep(0.05)
        raise AssertionError(f"no fill of {client_order_id} on oms.events.v1 within {timeout_s} s")


class NoFreshPrice(RuntimeError):
    """Risk refused the desk's order because market data stopped reaching it (seen on an overloaded machine, when
    the bars fall behind): the fill path cannot be exercised then."""


def operator_grpc(platform: Platform) -> None:
    """This process's gRPC calls present `tradectl`'s certificate from the platform's PKI (the user is the token's)."""
    from trading_platform import rpc
    from trading_platform.testing.identities import TestIdentities

    endpoints = platform.stack.endpoints()
    identities = TestIdentities(endpoints.vault_addr, endpoints.vault_token(), endpoints.redis_url)
    rpc.configure(client=rpc.ClientSecurity(identities.certificate("tradectl")))


def submit_market_order(platform: Platform, token: str, symbol: str = "MSFT", quantity: str = "1") -> str:
    """A trader's manual market order through order-management's gRPC SubmitOrder (the token's user is the
    submitter); its client order id. Waits while reconciliation still blocks new orders after the start."""
    from trading.common.v1 import common_pb2
    from trading.oms.v1 import oms_pb2, oms_pb2_grpc
    from trading_platform.decimals import to_proto
    from trading_platform.testing.waiting import rpc as call

    operator_grpc(platform)
    address = platform.spec("order-management").address
    deadline = time.monotonic() + 300  # between replayed sessions risk has no fresh price: the next session's bars
    while True:
        answer = run_async(
            call(
                address,
                lambda ch: oms_pb2_grpc.OrderServiceStub(ch).SubmitOrder(
                    oms_pb2.SubmitOrderRequest(
                        symbol=symbol,
                        side=common_pb2.ORDER_SIDE_BUY,
                        quantity=to_proto(Decimal(quantity)),
                        order_type=common_pb2.ORDER_TYPE_MARKET,
                        time_in_force=common_pb2.TIME_IN_FORCE_DAY,
                        decision_id=f"desk-{uuid.uuid4().hex[:12]}",
                        strategy_id="manual",
                    )
                ),
                token,
            )
        )
        if answer.accepted:
            return str(answer.order.client_order_id)
        if time.monotonic() > deadline:
            if "STALE_MARKET_DATA" in str(answer.reason_code):
                raise NoFreshPrice(f"risk had no fresh price of {symbol} for 300 s: {answer.reason}")
            raise AssertionError(f"the manual order was refused: {answer.reason_code} {answer.reason}")
        time.sleep(2)
