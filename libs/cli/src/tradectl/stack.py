"""tradectl up / down / status: the whole platform on one machine, as `make up` runs it.

`up` starts the embedded stack (tradectl dev up), the paper exchange (when no Alpaca keys are configured) and every
service as a background process with its configuration in environment variables, then waits until each answers its
gRPC health check. Logs and pids go under the run folder (.run/ by default). A service whose package is not built
yet is reported as such and skipped, never faked.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from trading_platform.devstack import DEFAULT_RUN_DIR, DevStack, DevStackError, Endpoints, ManagedProcess
from trading_platform.rpc import health_status

console = Console(stderr=True)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    grpc_port: int
    metrics_port: int
    # Extra environment (values may use {paper_exchange_url}, {run_dir}, {oms}, {risk}, {execution}).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def built(self) -> bool:
        return importlib.util.find_spec(f"{self.module}.__main__") is not None


PAPER_EXCHANGE_PORT = 18700
BROKER_ENV = {
    "TRADING_BROKER__BASE_URL": "{paper_exchange_url}",
    "TRADING_BROKER__API_KEY_ID": "vault:secret/trading/alpaca#api_key_id",
    "TRADING_BROKER__API_SECRET_KEY": "vault:secret/trading/alpaca#api_secret_key",
}
# Start order: the recorder first, then the gate, the broker edge, the book of record, and the data flow last.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("audit", "audit_service", 50056, 9106, {"TRADING_AUDIT__LEDGER_DIR": "{run_dir}/audit-ledger"}),
    ServiceSpec("risk", "risk_service", 50054, 9104),
    ServiceSpec("execution", "execution_service", 50055, 9105, BROKER_ENV),
    ServiceSpec(
        "order-management",
        "oms_service",
        50053,
        9103,
        {"TRADING_OMS__RISK_ADDRESS": "{risk}", "TRADING_OMS__EXECUTION_ADDRESS": "{execution}"},
    ),
    ServiceSpec("signal", "signal_service", 50052, 9102, {"TRADING_SIGNAL__MODEL_REGISTRY": "{run_dir}/models"}),
    ServiceSpec("market-data", "marketdata_service", 50051, 9101, BROKER_ENV),
)


def service_env(spec: ServiceSpec, endpoints: Endpoints, run_dir: Path, paper_exchange_url: str) -> dict[str, str]:
    values = {
        "paper_exchange_url": paper_exchange_url,
        "run_dir": str(run_dir),
        **{s.name.split("-")[0] if s.name != "order-management" else "oms": s.address for s in SERVICES},
    }
    return {
        "TRADING_SERVICE_NAME": spec.name,
        "TRADING_KAFKA__BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
        "TRADING_REDIS__URL": endpoints.redis_url,
        "TRADING_VAULT__ADDR": endpoints.vault_addr,
        "TRADING_VAULT__AUTH_METHOD": "approle",
        "TRADING_VAULT__APPROLE_FILE": str(Path(endpoints.approle_dir) / f"{spec.name}.json"),
        "TRADING_GRPC__PORT": str(spec.grpc_port),
        "TRADING_TELEMETRY__METRICS_PORT": str(spec.metrics_port),
        "TRADING_TELEMETRY__SPANS_FILE": str(run_dir / "spans.jsonl"),
        **{key: value.format(**values) for key, value in spec.env.items()},
    }


def paper_exchange_built() -> bool:
    return importlib.util.find_spec("paper_exchange.__main__") is not None


def paper_exchange_up(run_dir: Path, endpoints: Endpoints, port: int, timeout_s: float = 30.0) -> str:
    import httpx
    import hvac

    process = ManagedProcess("paper-exchange", run_dir)
    url = f"http://127.0.0.1:{port}"
    if process.running():
        return url
    client = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
    keys = client.secrets.kv.v2.read_secret_version(path="trading/alpaca", raise_on_deleted_version=True)
    data = keys["data"]["data"]
    # The keys reach the exchange through its environment only (never argv, which `ps` shows).
    process.start(
        [sys.executable, "-m", "paper_exchange", "--port", str(port)],
        env={"PAPER_EXCHANGE_API_KEY_ID": data["api_key_id"], "PAPER_EXCHANGE_API_SECRET_KEY": data["api_secret_key"]},
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        if not process.running():
            raise DevStackError(f"paper exchange exited; log {process.log_file}:\n{process.log_tail()}")
        time.sleep(0.2)
    raise DevStackError(f"paper exchange did not answer at {url}; log {process.log_file}")


async def wait_serving(specs: list[ServiceSpec], run_dir: Path, timeout_s: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    pending = list(specs)
    while pending and time.monotonic() < deadline:
        for spec in list(pending):
            states[spec.name] = await health_status(spec.address, timeout_s=0.5)
            if states[spec.name] == "SERVING":
                pending.remove(spec)
            elif not ManagedProcess(spec.name, run_dir).running():
                states[spec.name] = "EXITED"
                pending.remove(spec)
        await asyncio.sleep(0.2)
    return states


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)


def up(
    run_dir: Path = typer.Option(DEFAULT_RUN_DIR, "--run-dir", help="logs, pids and state of this run"),
    paper_exchange_port: int = typer.Option(PAPER_EXCHANGE_PORT, help="paper exchange HTTP port"),
    timeout_s: float = typer.Option(60.0, "--timeout", help="seconds to wait for every service to be healthy"),
) -> None:
    """Start the embedded stack, the paper exchange and every service; wait until all are healthy."""
    run_dir = run_dir.resolve()
    try:
        endpoints = DevStack.from_run_dir(run_dir).up()
        console.print(
            f"stack: Kafka {endpoints.kafka_bootstrap}, Redis {endpoints.redis_url}, Vault {endpoints.vault_addr}"
        )
        exchange_url = ""
        if paper_exchange_built():
            exchange_url = paper_exchange_up(run_dir, endpoints, paper_exchange_port)
            console.print(f"paper exchange: {exchange_url}")
        else:
            console.print("[yellow]paper exchange: not built yet (services/paper-exchange); skipped[/yellow]")
    except DevStackError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    started: list[ServiceSpec] = []
    for spec in SERVICES:
        if not spec.built():
            console.print(f"[yellow]{spec.name}: not built yet ({spec.module}); skipped[/yellow]")
            continue
        process = ManagedProcess(spec.name, run_dir)
        if not process.running():
            process.start([sys.executable, "-m", spec.module], env=service_env(spec, endpoints, run_dir, exchange_url))
        started.append(spec)
    states = asyncio.run(wait_serving(started, run_dir, timeout_s))
    failed = {name: state for name, state in states.items() if state != "SERVING"}
    for name, state in states.items():
        colour = "green" if state == "SERVING" else "red"
        console.print(f"{name}: [{colour}]{state}[/{colour}] (log {run_dir / 'logs' / (name + '.log')})")
    (run_dir / "platform.json").write_text(
        json.dumps({"paper_exchange_url": exchange_url, "services": {s.name: s.address for s in started}}, indent=2)
        + "\n"
    )
    if failed:
        console.print(f"[red]not healthy: {', '.join(failed)}; see their logs[/red]")
        raise typer.Exit(1)
    console.print("[green]platform up[/green]: `tradectl status`, `tradectl tail <topic>`, `make down` to stop")


def down(run_dir: Path = typer.Option(DEFAULT_RUN_DIR, "--run-dir", help="the run to stop")) -> None:
    """Stop every service (draining), the paper exchange and the embedded stack."""
    run_dir = run_dir.resolve()
    stopped = [spec.name for spec in reversed(SERVICES) if ManagedProcess(spec.name, run_dir).stop(timeout_s=15)]
    if ManagedProcess("paper-exchange", run_dir).stop():
        stopped.append("paper-exchange")
    stopped += DevStack.from_run_dir(run_dir).down()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


def platform_status(run_dir: Path) -> dict[str, Any]:
    stack = DevStack.from_run_dir(run_dir)
    try:
        platform = json.loads((run_dir / "platform.json").read_text())
    except FileNotFoundError:
        platform = {"paper_exchange_url": "", "services": {}}

    async def health() -> dict[str, str]:
        return {spec.name: await health_status(spec.address, timeout_s=0.5) for spec in SERVICES}

    states = asyncio.run(health())
    services = {
        spec.name: {
            "address": spec.address,
            "health": states[spec.name],
            "built": spec.built(),
            "pid": ManagedProcess(spec.name, run_dir).pid(),
            "metrics_port": spec.metrics_port,
        }
        for spec in SERVICES
    }
    exchange_url = platform.get("paper_exchange_url", "")
    exchange = {
        "url": exchange_url,
        "pid": ManagedProcess("paper-exchange", run_dir).pid(),
        "health": "SERVING" if exchange_url and _http_ok(f"{exchange_url}/healthz") else "UNREACHABLE",
    }
    return {
        "stack": stack.status(),
        "endpoints": stack.endpoints().to_dict(),
        "paper_exchange_url": exchange_url,
        "paper_exchange": exchange,
        "services": services,
    }


def _http_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def status(
    run_dir: Path = typer.Option(DEFAULT_RUN_DIR, "--run-dir", help="the run to inspect"),
    as_json: bool = typer.Option(False, "--json", help="every address, health and URL as JSON"),
) -> None:
    """Every service's address and health, the stack's endpoints and the paper exchange's URL."""
    state = platform_status(run_dir.resolve())
    if as_json:
        print(json.dumps(state, indent=2))
        return
    table = Table(title="platform")
    for column in ("part", "address", "health", "pid"):
        table.add_column(column)
    for name, part in state["stack"].items():
        table.add_row(name, str(part["endpoint"]), "answering" if part["answering"] else "down", str(part["pid"]))
    if state["paper_exchange_url"]:
        exchange = state["paper_exchange"]
        table.add_row("paper-exchange", exchange["url"], exchange["health"], str(exchange["pid"] or "-"))
    for name, service in state["services"].items():
        health = service["health"] if service["built"] else "not built"
        table.add_row(name, service["address"], health, str(service["pid"] or "-"))
    Console().print(table)
