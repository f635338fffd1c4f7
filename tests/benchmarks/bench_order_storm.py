"""An order storm: --rate orders a second (100) for --storm-s through order-management's SubmitOrder, risk's
CheckOrder and execution, against the broker's limit of 200 requests a minute (the paper exchange's --rate-limit 200
and execution's EXECUTION__REQUESTS_PER_MINUTE 200, as against Alpaca). Approved orders queue in execution; the
benchmark waits until each one reached the broker or was refused with a reason, and measures how the queue drains.

Risk's own order rate limit (RISK__MAX_ORDERS_PER_SECOND, 50) is raised to 200 here so that the storm reaches the
broker's limit rather than stopping at risk's. Orders are market orders of one share, buying and selling in turn on
the four names of the default universe (the book stays flat); the replay clock moves one simulated minute a second
(fresh prices for risk). Signal does not run: every order is the storm's.

Figures (benchmarks/results/order_storm.json): the answers by reason code, approved, at the broker, refused by
execution (with the reasons), lost (approved, yet neither at the broker nor refused), submitted twice, the most
submits in any 60 s, approval -> at the broker (the queueing), how long the queue took to drain, its depth over time,
the invariants of tests/e2e/invariants.py once quiet, and each service's resident memory at the start and the end.

python -m tests.benchmarks bench_order_storm [--storm-s 10] [--rate 100] [--drain-s 900] [--run-dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

from tradectl.stack import Platform
from trading.common.v1 import common_pb2
from trading.execution.v1 import execution_pb2
from trading.oms.v1 import oms_pb2, oms_pb2_grpc
from trading_platform.decimals import to_proto
from trading_platform.identity import TRADER
from trading_platform.messaging import KafkaConnection
from trading_platform.rpc import ClientSecurity, channel
from trading_platform.testing.identities import TestIdentities

from tests.benchmarks.load import Clock, admin_key, memory_growth, read_topic, resident_mb, run_dir, start
from tests.benchmarks.stats import latency_summary, most_in_any_window, write_results
from tests.e2e.invariants import Broker, check

SERVICES = ("audit", "risk", "execution", "order-management", "market-data")
SYMBOLS = ("AAPL", "MSFT", "IBM", "GOOG")
BROKER_LIMIT_PER_MINUTE = 200


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_order_storm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--storm-s", type=float, default=10.0, help="seconds of the storm")
    parser.add_argument("--rate", type=float, default=100.0, help="orders per second")
    parser.add_argument("--drain-s", type=float, default=900.0, help="longest wait for the queue to drain")
    parser.add_argument("--run-dir", default=None, help="keep logs here")
    return parser.parse_args(argv)


async def storm(
    address: str, security: ClientSecurity, rate: float, seconds: float, prefix: str = "storm"
) -> list[dict[str, Any]]:
    """Submit rate x seconds orders on a fixed schedule (each call in its own task, one channel); every answer with
    its times."""
    answers: list[dict[str, Any]] = []
    oms = channel(address, 10.0, security=security)
    stub = oms_pb2_grpc.OrderServiceStub(oms)

    async def one(i: int) -> None:
        side = common_pb2.ORDER_SIDE_BUY if (i // len(SYMBOLS)) % 2 == 0 else common_pb2.ORDER_SIDE_SELL
        request = oms_pb2.SubmitOrderRequest(
            symbol=SYMBOLS[i % len(SYMBOLS)],
            side=side,
            quantity=to_proto("1"),
            order_type=common_pb2.ORDER_TYPE_MARKET,
            time_in_force=common_pb2.TIME_IN_FORCE_DAY,
            decision_id=f"{prefix}-{i}",
            strategy_id="storm",
        )
        sent = time.time_ns()
        try:
            answer = await stub.SubmitOrder(request)
            code, cid = answer.reason_code or "?", answer.order.client_order_id
        except Exception as error:
            code, cid = type(error).__name__, ""
        answers.append({"i": i, "code": code, "cid": cid, "sent_ns": sent, "answered_ns": time.time_ns()})

    started = time.monotonic()
    tasks = []
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    await oms.close()
    return answers


def refused_by_execution(admin: KafkaConnection, cids: set[str]) -> dict[str, str]:
    refused: dict[str, str] = {}

    def report(_: bytes | None, value: bytes | None) -> None:
        message = execution_pb2.ExecutionReport.FromString(value or b"")
        if message.report_type == execution_pb2.EXECUTION_REPORT_TYPE_REJECTED and message.client_order_id in cids:
            code = execution_pb2.RefusalCode.Name(message.refusal_code)
            refused[message.client_order_id] = f"{code}: {message.reason}"

    read_topic(admin, "execution.reports.v1", report)
    return refused


def main(argv: list[str] | None = None) -> None:
    args = parse(argv or [])
    with run_dir(args.run_dir) as folder:
        platform = Platform.with_free_ports(
            folder,
            exchange_args=("--speed", "0", "--rate-limit", str(BROKER_LIMIT_PER_MINUTE)),
            service_env={
                "execution": {"TRADING_EXECUTION__REQUESTS_PER_MINUTE": str(BROKER_LIMIT_PER_MINUTE)},
                # the storm reaches the broker's limit, not risk's; and risk's bar-age limit is lifted (it ages the
                # replayed 2010 bars against the wall clock: docs/reliability.md, faults on the real stack)
                "risk": {
                    "TRADING_RISK__MAX_ORDERS_PER_SECOND": "200",
                    "TRADING_RISK__MAX_MARKET_DATA_AGE_S": "10000000000",
                },
            },
        )
        clock: Clock | None = None
        try:
            endpoints = start(platform, SERVICES)
            clock = Clock(platform.exchange_url, admin_key(endpoints), 1.0)
            clock.start()
            figures = measure(platform, endpoints.kafka_admin(), args)
        finally:
            if clock is not None and clock.is_alive():
                clock.stop()
            platform.down()
    write_results("order_storm", figures)


def measure(platform: Platform, admin: KafkaConnection, args: argparse.Namespace) -> dict[str, Any]:
    broker = Broker(platform)
    oms = platform.spec("order-management").address
    endpoints = platform.stack.endpoints()
    identities = TestIdentities(endpoints.vault_addr, endpoints.vault_token(), endpoints.redis_url)
    trader = platform.grpc_client(token=identities.user_token("storm-desk", roles=[TRADER], ttl_s=7200))
    deadline = time.monotonic() + 90
    while True:  # order-management takes orders once its first reconciliation passed (the probe is one order)
        probe = asyncio.run(storm(oms, trader, 1.0, 1.0, f"storm-probe-{time.monotonic_ns()}"))[0]
        if probe["code"] not in ("RECONCILIATION_BLOCKED", "UNAVAILABLE") or time.monotonic() > deadline:
            break
        time.sleep(1)
    memory_start = resident_mb(platform, SERVICES)
    answers = asyncio.run(storm(oms, trader, args.rate, args.storm_s))
    storm_end = time.monotonic()
    approved = {a["cid"]: a["answered_ns"] for a in answers if a["code"] == "APPROVED"}
    timeline, refused, at_broker = [], {}, {}
    while time.monotonic() - storm_end < args.drain_s:
        at_broker = {s["client_order_id"]: s["received_ns"] for s in broker.record()["submissions"]}
        refused = refused_by_execution(admin, set(approved))
        waiting = [cid for cid in approved if cid not in at_broker and cid not in refused]
        timeline.append({"t_s": round(time.monotonic() - storm_end, 1), "queued": len(waiting)})
        if not waiting:
            break
        time.sleep(10)
    drained_s = round(time.monotonic() - storm_end, 1)
    submissions = broker.record()["submissions"]
    memory_end = resident_mb(platform, SERVICES)
    times = [s["received_ns"] for s in submissions if s["client_order_id"] in approved]
    violations = check(platform, broker, trader, timeout_s=60)
    return {
        "offered": len(answers),
        "offered_per_s": args.rate,
        "storm_s": args.storm_s,
        "answers": dict(Counter(a["code"] for a in answers)),
        "submit_answer_latency": latency_summary([a["answered_ns"] - a["sent_ns"] for a in answers]),
        "approved": len(approved),
        "at_broker": sum(1 for cid in approved if cid in at_broker),
        "refused_by_execution": len(refused),
        "refusal_codes": dict(Counter(reason.split(":")[0] for reason in refused.values())),
        "refusal_examples": {reason.split(":")[0]: reason for reason in refused.values()},
        "lost": sum(1 for cid in approved if cid not in at_broker and cid not in refused),
        "submitted_twice": sum(1 for n in Counter(s["client_order_id"] for s in submissions).values() if n > 1),
        "most_submits_in_any_60_s": most_in_any_window(times, 60e9),
        "broker_limit_per_minute": BROKER_LIMIT_PER_MINUTE,
        "approved_to_at_broker": latency_summary([at_broker[c] - t for c, t in approved.items() if c in at_broker])
        if any(c in at_broker for c in approved)
        else {"samples": 0},
        "drain_after_storm_s": drained_s,
        "queue_timeline": timeline,
        "invariant_violations": violations[:20],
        "resident_memory": memory_growth(memory_start, memory_end),
        "note": "order-management, risk, execution, market-data and audit as processes with the paper exchange and "
        "the secured embedded broker on one machine; RISK__MAX_ORDERS_PER_SECOND raised to 200 for the storm",
    }


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
