"""Push to 100 connected clients: the delay from the bus to each client of the gateway's live stream.

The gateway runs as `tradectl up` runs it (a process, with the embedded stack; no other service, so nothing else
loads the machine). N clients (default 100) each hold `GET /api/v1/stream?topics=breaches` open with a viewer's
bearer token, in this process (httpx, one event loop), apart from the gateway's. Then E events (default 200, at
R per second) are published on risk.alerts.v1 (the `breaches` channel) as the stack's operator, each naming its
sequence number and the UNIX ns it was sent at. A client's delay for an event is when its `data:` arrived minus
when it was sent (one machine, one clock). The clients connect at 20 a second (the gateway limits a user to 30
requests a second). Figures: p50/p90/p99/max of every (client, event) delay in ms, and how
many deliveries were missed -> benchmarks/results/push.json.

python -m tests.benchmarks bench_push [--clients 100] [--events 200] [--rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tradectl.stack import SERVICES, Platform
from trading.risk.v1 import risk_pb2
from trading_platform.envelope import new_envelope
from trading_platform.messaging import Publisher

from tests.benchmarks.stats import write_results
from tests.browser.desk import GATEWAY_ENV, Desk

MARK = "push-benchmark"


class Client:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.arrivals: dict[int, int] = {}  # event sequence -> arrival UNIX ns
        self.sent: dict[int, int] = {}
        self.connected = asyncio.Event()

    async def run(self, http: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        async with http.stream("GET", f"{self.url}/api/v1/stream?topics=breaches", headers=headers) as answer:
            answer.raise_for_status()
            event = ""
            async for line in answer.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                    if event == "hello":
                        self.connected.set()
                elif line.startswith("data:") and event == "breaches":
                    now = time.time_ns()
                    data = json.loads(line[5:])
                    if data.get("kind") == MARK:
                        seq = int(data["details"]["seq"])
                        self.arrivals[seq] = now
                        self.sent[seq] = int(data["details"]["sent_ns"])


async def measure(platform: Platform, clients: int, events: int, rate: float) -> dict[str, Any]:
    desk = Desk.bootstrap(platform)
    token = desk.token("vera")  # a viewer: no TOTP; one token for every client (each is its own connection)
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        readers = [Client(platform.gateway_url, token) for _ in range(clients)]
        tasks = []
        for reader in readers:  # 20 connections a second: under the gateway's per-user rate limit (30/s)
            tasks.append(asyncio.create_task(reader.run(http)))
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in readers)), 60)
        connection = platform.stack.endpoints().kafka_admin()
        async with Publisher(connection, "risk") as publisher:
            for seq in range(events):
                sent = time.time_ns()
                alert = risk_pb2.RiskAlertRaised(
                    envelope=new_envelope("risk"),
                    kind=MARK,
                    severity=risk_pb2.ALERT_SEVERITY_INFO,
                    message=f"push benchmark event {seq}",
                    details={"seq": str(seq), "sent_ns": str(sent)},
                )
                await publisher.publish("risk.alerts.v1", alert, MARK)
                await asyncio.sleep(max(0.0, 1 / rate - (time.time_ns() - sent) / 1e9))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(len(c.arrivals) for c in readers) < clients * events:
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    delays_ms = np.asarray([(c.arrivals[s] - c.sent[s]) / 1e6 for c in readers for s in c.arrivals], dtype=np.float64)
    received = len(delays_ms)
    return {
        "clients": clients,
        "events": events,
        "publish_rate_per_s": rate,
        "deliveries_expected": clients * events,
        "deliveries_received": received,
        "deliveries_missed": clients * events - received,
        "delay_ms": {
            "p50": round(float(np.percentile(delays_ms, 50)), 2),
            "p90": round(float(np.percentile(delays_ms, 90)), 2),
            "p99": round(float(np.percentile(delays_ms, 99)), 2),
            "max": round(float(delays_ms.max()), 2),
            "mean": round(float(delays_ms.mean()), 2),
        }
        if received
        else None,
        "budget_p99_ms": 1000,
        "setup": "gateway process + embedded stack; clients in the benchmark process; the publisher as the operator",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_push")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="events published per second")
    args = parser.parse_args(argv or [])
    gateway = next(spec for spec in SERVICES if spec.name == "gateway")
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        run = Platform.with_free_ports(Path(tmp), services=(gateway,), service_env={"gateway": dict(GATEWAY_ENV)})
        try:
            states = run.up(timeout_s=120)
            if states != {"gateway": "SERVING"}:
                raise RuntimeError(f"the gateway is not serving: {states}")
            figures = asyncio.run(measure(run, args.clients, args.events, args.rate))
        finally:
            run.down()
    write_results("push", figures)


if __name__ == "__main__":
    main()
