"""The REST API under load: about 1,000 requests/s for 60 s from wrk (a separate process) against the gateway started
as `tradectl up` starts it (its own process, over the embedded Redis, OpenBao and Kafka), as a viewer with a real
access token, through every layer a client meets (security headers, error guard, rate limits counted in Redis, body
cap, token verification and revocation check, the access policy, the read model).

wrk (Debian's package; the benchmark says so and stops if it is absent) keeps CONNECTIONS connections, each
waiting a delay between its requests so that together they offer RATE requests/s (the delay is calibrated on a
short first run: the offered rate is CONNECTIONS / (delay + latency)); a Lua script adds the Authorization header
(the token reaches wrk through its environment, never its command line), cycles over read routes, and writes
the latency percentiles, throughput and errors (socket errors and any non-2xx answer) as JSON. Results:
benchmarks/results/api.json, with the load average of the machine before and after (others share it) and the CPU
time the gateway's process spent per request (its capacity, whatever else the machine runs).

Budget (docs): p99 <= 20 ms with 0 errors. `python -m tests.benchmarks bench_api [--duration-s 60] [--rate 1000]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import hvac
import psutil
import pyotp
from tradectl.stack import SERVICES, Platform

from tests.benchmarks.load import run_dir
from tests.benchmarks.stats import write_results

RATE = 1000
DURATION_S = 60
CONNECTIONS = 20
THREADS = 2
PATHS = ("/api/v1/positions", "/api/v1/account", "/api/v1/risk", "/api/v1/orders?limit=50", "/api/v1/auth/me")
PASSWORD = "load test passphrase " + uuid.uuid4().hex  # pragma: allowlist secret (a throwaway user)
# Counted like every request, but out of the way of one user at 1,000 requests/s.
GATEWAY_ENV = {
    "TRADING_GATEWAY__RATE_LIMIT_USER": "100000/second",
    "TRADING_GATEWAY__RATE_LIMIT_ADDRESS": "100000/second",
    "TRADING_GATEWAY__ACCESS_TOKEN_TTL_S": "1800",
}

LUA = """
local token = os.getenv("BENCH_TOKEN")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS"))
local paths = {%(paths)s}
local i = 0
local headers = {["Authorization"] = "Bearer " .. token}

request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], headers)
end

delay = function()
  return delay_ms
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "errors": {"connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d}, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "p99_9_us": %%d, ' ..
    '"max_us": %%d, "mean_us": %%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_api")
    parser.add_argument("--duration-s", type=int, default=DURATION_S)
    parser.add_argument("--rate", type=int, default=RATE)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--run-dir", default=None, help="keep the stack's files here (default: a temporary folder)")
    return parser.parse_args(argv)


def ok(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
        )
    return response


def viewer_token(gateway_url: str, vault: hvac.Client) -> str:
    """The first admin (from the one-time secret), a viewer it creates, and the viewer's access token."""
    from gateway_service.bootstrap import write_secret

    with httpx.Client(base_url=gateway_url, timeout=30) as http:
        secret = write_secret(vault)
        made = http.post("/api/v1/auth/bootstrap", json={"secret": secret, "username": "admin", "password": PASSWORD})
        ok(made)
        code = pyotp.TOTP(made.json()["totp_secret"]).now()
        login = http.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD, "totp_code": code})
        ok(login)
        admin = {"authorization": f"Bearer {login.json()['access_token']}"}
        created = http.post(
            "/api/v1/users", json={"username": "reader", "roles": ["viewer"], "password": PASSWORD}, headers=admin
        )
        ok(created)
        viewer = http.post("/api/v1/auth/login", json={"username": "reader", "password": PASSWORD})
        ok(viewer)
        token = str(viewer.json()["access_token"])
        for path in PATHS:  # every route answers before the load
            answer = http.get(path, headers={"authorization": f"Bearer {token}"})
            if answer.status_code != 200:
                raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
        return token


def wrk(url: str, token: str, seconds: int, connections: int, delay_ms: int, script: Path) -> dict[str, Any]:
    env = {**os.environ, "BENCH_TOKEN": token, "BENCH_DELAY_MS": str(delay_ms)}
    command = [
        "wrk",
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((row for row in done.stdout.splitlines() if row.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    return figures


def summarise(raw: dict[str, Any], rate: int, connections: int, delay_ms: int) -> dict[str, Any]:
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    return {
        "offered_rate_per_s": rate,
        "connections": connections,
        "delay_ms": delay_ms,
        "duration_s": round(seconds, 1),
        "requests": raw["requests"],
        "throughput_per_s": round(raw["requests"] / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "p99_9_ms": round(raw["p99_9_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "mean_ms": round(raw["mean_us"] / 1000, 2),
        "errors": errors,
        "errors_by_kind": raw["errors"],
        "budget": {"p99_ms": 20, "errors": 0},
        "within_budget": raw["p99_us"] <= 20_000 and errors == 0,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse(argv or [])
    if shutil.which("wrk") is None:
        print("bench_api: skipped: wrk is not installed (Debian: apt-get install wrk); no figures written")
        return
    gateway = next(spec for spec in SERVICES if spec.name == "gateway")
    with run_dir(args.run_dir) as folder, tempfile.TemporaryDirectory() as scratch:
        platform = Platform.with_free_ports(folder, services=(gateway,), service_env={"gateway": GATEWAY_ENV})
        try:
            endpoints = platform.stack.up(timeout_s=180)
            platform.gateway_vault(endpoints)
            state = platform.start_service("gateway", endpoints, timeout_s=180)
            if state != "SERVING":
                raise RuntimeError(f"the gateway is {state}:\n{platform.process('gateway').log_tail(30)}")
            vault = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
            token = viewer_token(platform.gateway_url, vault)
            script = Path(scratch) / "api.lua"
            script.write_text(LUA % {"paths": ", ".join(json.dumps(path) for path in PATHS)})
            pacing_ms = args.connections * 1000 / args.rate
            calibration = wrk(platform.gateway_url, token, 5, args.connections, int(pacing_ms), script)
            delay_ms = max(0, round(pacing_ms - calibration["mean_us"] / 1000))
            served_by = psutil.Process(platform.process("gateway").pid())
            load_before = os.getloadavg()
            cpu_before = served_by.cpu_times()
            started = time.monotonic()
            raw = wrk(platform.gateway_url, token, args.duration_s, args.connections, delay_ms, script)
            cpu_after = served_by.cpu_times()
            figures = summarise(raw, args.rate, args.connections, delay_ms)
            figures["wall_s"] = round(time.monotonic() - started, 1)
            # What a request costs the gateway's process, whatever else the machine runs: its capacity per core.
            cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
            figures["gateway_cpu_ms_per_request"] = round(1000 * cpu_s / max(1, raw["requests"]), 3)
            figures["gateway_cpu_share_of_a_core"] = round(cpu_s / figures["wall_s"], 2)
            figures["load_average_before"] = [round(value, 2) for value in load_before]
            figures["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
            figures["routes"] = list(PATHS)
            figures["load_generator"] = f"wrk, {THREADS} threads, {args.connections} connections, a separate process"
        finally:
            platform.down()
    write_results("api", figures)
