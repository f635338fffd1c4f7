"""tradectl up / down / status: the whole platform on one machine, as `make up` runs it.

`Platform.up()` starts the embedded stack, the paper exchange (when no Alpaca keys are configured) and every service
as a background process with its configuration in environment variables, one after the other in dependency order,
each health-checked before the next starts. Logs and pids go under the run folder (.run/ by default). A service whose
package is not installed is reported and skipped, never faked. The end-to-end tests drive the same class.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from trading_platform.devstack import (
    DEFAULT_RUN_DIR,
    KAFKA_SECRET,
    DevStack,
    DevStackError,
    Endpoints,
    ManagedProcess,
    StackPorts,
    stop_all,
)
from trading_platform.rpc import ClientSecurity, health_status

console = Console(stderr=True)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    grpc_port: int
    metrics_port: int
    # Extra environment; values may use {paper_exchange_url}, {run_dir} and {<service>_address}.
    env: dict[str, str] = field(default_factory=dict)
    # The service this process is an instance of, when the process name differs (a second blue-green colour).
    service: str = ""
    # Services of one wave start together; a wave starts once the one before it serves.
    wave: int = 0

    @property
    def service_name(self) -> str:
        return self.service or self.name

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def built(self) -> bool:
        return importlib.util.find_spec(f"{self.module}.__main__") is not None


BROKER_ENV = {
    "TRADING_BROKER__BASE_URL": "{paper_exchange_url}",
    "TRADING_BROKER__API_KEY_ID": "vault:secret/trading/alpaca#api_key_id",
    "TRADING_BROKER__API_SECRET_KEY": "vault:secret/trading/alpaca#api_secret_key",
}
# Start order, in waves: the services that wait by themselves for what they need (Kafka, Vault, their peers' RPCs)
# together; then signal alone (its Ray node timed out at start when it competed with six other start-ups for two
# cores); the data flow last, so that every bar it publishes has its consumers up. Stopped all together.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("audit", "audit_service", 50056, 9106, {"TRADING_AUDIT__LEDGER_DIR": "{run_dir}/audit-ledger"}),
    # HTTP on {gateway_http_port} (users, sessions, tokens, the JWKS); its gRPC port serves health only.
    # Its REST writes and audit search call risk, order-management and audit with the caller's token.
    ServiceSpec(
        "gateway",
        "gateway_service",
        50057,
        9107,
        {
            "TRADING_GATEWAY__PORT": "{gateway_http_port}",
            "TRADING_GATEWAY__RISK_ADDRESS": "{risk_address}",
            "TRADING_GATEWAY__OMS_ADDRESS": "{oms_address}",
            "TRADING_GATEWAY__AUDIT_ADDRESS": "{audit_address}",
            "TRADING_GATEWAY__EXECUTION_ADDRESS": "{execution_address}",
            "TRADING_GATEWAY__MODEL_REGISTRY": "{run_dir}/models",
        },
    ),
    # The faust-streaming analytics and alert rules (analytics.* topics); its gRPC port serves health only.
    ServiceSpec("analytics", "analytics_service", 50058, 9108, {"TRADING_ANALYTICS__DATA_DIR": "{run_dir}/analytics"}),
    ServiceSpec("risk", "risk_service", 50054, 9104, {"TRADING_RISK__EXECUTION_ADDRESS": "{execution_address}"}),
    ServiceSpec("execution", "execution_service", 50055, 9105, BROKER_ENV),
    ServiceSpec(
        "order-management",
        "oms_service",
        50053,
        9103,
        {"TRADING_OMS__RISK_ADDRESS": "{risk_address}", "TRADING_OMS__EXECUTION_ADDRESS": "{execution_address}"},
    ),
    ServiceSpec(
        "signal",
        "signal_service",
        50052,
        9102,
        {"TRADING_SIGNAL__MODEL_REGISTRY": "{run_dir}/models"},
        wave=1,
    ),
    ServiceSpec("market-data", "marketdata_service", 50051, 9101, BROKER_ENV, wave=2),
)
PAPER_EXCHANGE_PORT = 18700
GATEWAY_HTTP_PORT = 18080


class Platform:
    """The embedded stack, the paper exchange and the six services of one run folder."""

    def __init__(
        self,
        run_dir: Path = DEFAULT_RUN_DIR,
        stack_ports: StackPorts | None = None,
        exchange_port: int = PAPER_EXCHANGE_PORT,
        services: tuple[ServiceSpec, ...] = SERVICES,
        exchange_args: tuple[str, ...] = ("--speed", "2"),
        extra_env: dict[str, str] | None = None,
        service_env: dict[str, dict[str, str]] | None = None,
        exchange_env: dict[str, str] | None = None,
        gateway_port: int = GATEWAY_HTTP_PORT,
    ) -> None:
        self.run_dir = run_dir.resolve()
        self.stack = DevStack(self.run_dir, stack_ports) if stack_ports else DevStack.from_run_dir(self.run_dir)
        self.exchange_port = exchange_port
        self.services = services
        self.exchange_args = exchange_args
        self.extra_env = extra_env or {}  # for every service
        self.per_service_env = service_env or {}  # by service name
        self.exchange_env = exchange_env or {}
        self.exchange_url = f"http://127.0.0.1:{exchange_port}"
        self.gateway_port = gateway_port
        self.gateway_url = f"http://127.0.0.1:{gateway_port}"
        self.gateway_bootstrap_waiting = False
        self._operator: ClientSecurity | None = None

    @classmethod
    def from_run_dir(cls, run_dir: Path = DEFAULT_RUN_DIR) -> Platform:
        """The platform a previous `up` started in run_dir (its ports), or the defaults."""
        try:
            recorded = json.loads((run_dir / "platform.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return cls(run_dir)
        ports = recorded.get("ports", {})
        services = tuple(
            dataclasses.replace(
                s,
                grpc_port=ports.get(s.name, [s.grpc_port, s.metrics_port])[0],
                metrics_port=ports.get(s.name, [s.grpc_port, s.metrics_port])[1],
            )
            for s in SERVICES
        )
        exchange_port = int(recorded.get("paper_exchange_url", "").rsplit(":", 1)[-1] or PAPER_EXCHANGE_PORT)
        gateway_port = int(recorded.get("gateway_url", "").rsplit(":", 1)[-1] or GATEWAY_HTTP_PORT)
        return cls(run_dir, services=services, exchange_port=exchange_port, gateway_port=gateway_port)

    @classmethod
    def with_free_ports(cls, run_dir: Path, services: tuple[ServiceSpec, ...] = SERVICES, **kwargs: Any) -> Platform:
        from trading_platform.devstack import free_port

        services = tuple(dataclasses.replace(s, grpc_port=free_port(), metrics_port=free_port()) for s in services)
        kwargs.setdefault("gateway_port", free_port())
        return cls(run_dir, StackPorts(free_port(), free_port(), free_port()), free_port(), services, **kwargs)

    def grpc_client(self, token: str | None = None) -> ClientSecurity:
        """The operator's gRPC client of this platform: the `tradectl` certificate from the stack's PKI (issued once
        per Platform object) and, if given, a user's access token."""
        if self._operator is None:
            self._operator = self.stack.endpoints().grpc_client()
        return self._operator.with_bearer(token)

    def spec(self, name: str) -> ServiceSpec:
        return next(s for s in self.services if s.name == name)

    def process(self, name: str) -> ManagedProcess:
        return ManagedProcess(name, self.run_dir)

    def service_env(self, spec: ServiceSpec, endpoints: Endpoints) -> dict[str, str]:
        values = {
            "paper_exchange_url": self.exchange_url,
            "run_dir": str(self.run_dir),
            # Every service's default address, then this platform's own (a platform may run a subset).
            **{f"{s.module.removesuffix('_service')}_address": s.address for s in SERVICES},
            **{f"{s.module.removesuffix('_service')}_address": s.address for s in self.services if not s.service},
        }
        values["gateway_http_port"] = str(self.gateway_port)  # (risk_address etc. come from the modules above)
        return {
            "TRADING_SERVICE_NAME": spec.service_name,
            "TRADING_KAFKA__BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
            **self.kafka_credentials(spec, endpoints),
            "TRADING_REDIS__URL": endpoints.redis_url,
            "TRADING_VAULT__ADDR": endpoints.vault_addr,
            "TRADING_VAULT__AUTH_METHOD": "approle",
            "TRADING_VAULT__APPROLE_FILE": str(Path(endpoints.approle_dir) / f"{spec.service_name}.json"),
            "TRADING_GRPC__PORT": str(spec.grpc_port),
            "TRADING_TELEMETRY__METRICS_PORT": str(spec.metrics_port),
            "TRADING_TELEMETRY__SPANS_FILE": str(self.run_dir / "spans.jsonl"),
            **{key: value.format(**values) for key, value in spec.env.items()},
            **self.extra_env,
            **self.per_service_env.get(spec.name, {}),
        }

    @staticmethod
    def kafka_credentials(spec: ServiceSpec, endpoints: Endpoints) -> dict[str, str]:
        """The service's own Kafka principal; its password stays in Vault (a reference, resolved at start-up)."""
        if endpoints.kafka_security_protocol == "PLAINTEXT":
            return {}
        return {
            "TRADING_KAFKA__SECURITY_PROTOCOL": endpoints.kafka_security_protocol,
            "TRADING_KAFKA__USERNAME": spec.service_name,
            "TRADING_KAFKA__PASSWORD": f"vault:secret/trading/{spec.service_name}/{KAFKA_SECRET}#password",
        }

    def up(self, timeout_s: float = 60.0) -> dict[str, str]:
        """Start everything not running yet; returns each service's health. Raises DevStackError on failure."""
        endpoints = self.stack.up()
        console.print(
            f"stack: Kafka {endpoints.kafka_bootstrap}, Redis {endpoints.redis_url}, Vault {endpoints.vault_addr}"
        )
        self.seed_model_registry()  # first: the exchange checks that the served policies have not seen its replay
        if importlib.util.find_spec("paper_exchange.__main__") is not None:
            self.exchange_up(endpoints)
            console.print(f"paper exchange: {self.exchange_url}")
            console.print(periods_banner(self.exchange_url, self.run_dir / "models"))
        else:
            console.print("[yellow]paper exchange: not installed; skipped[/yellow]")
        self.gateway_bootstrap_waiting = self.gateway_vault(endpoints)
        built = []
        for spec in self.services:
            if spec.built():
                built.append(spec)
            else:
                console.print(f"[yellow]{spec.name}: not installed ({spec.module}); skipped[/yellow]")
        # Together, their imports, certificates and group joins overlap instead of adding up (measured here, signal
        # serving in process: the eight services took 26 s one after the other, 19 s together).
        states: dict[str, str] = {}
        for wave in sorted({spec.wave for spec in built}):
            if any(state != "SERVING" for state in states.values()):
                break
            together = [spec for spec in built if spec.wave == wave]
            for spec in together:
                self.launch(spec.name, endpoints)
            states |= asyncio.run(self._wait_all(together, timeout_s))
        for spec in built:
            if spec.name not in states:
                console.print(f"[yellow]{spec.name}: not started (a service before it did not serve)[/yellow]")
                continue
            colour = "green" if states[spec.name] == "SERVING" else "red"
            console.print(
                f"{spec.name}: [{colour}]{states[spec.name]}[/{colour}] ({spec.address}, log "
                f"{self.process(spec.name).log_file})"
            )
        (self.run_dir / "platform.json").write_text(
            json.dumps(
                {
                    "paper_exchange_url": self.exchange_url,
                    "gateway_url": self.gateway_url,
                    "services": {s.name: s.address for s in self.services},
                    "ports": {s.name: [s.grpc_port, s.metrics_port] for s in self.services},
                },
                indent=2,
            )
            + "\n"
        )
        return states

    def seed_model_registry(self) -> None:
        """Copy the bundled RL policy into the run's model registry the first time (then the registry is the run's:
        `tradectl train` adds versions to it, `tradectl models promote` hot-swaps them)."""
        if importlib.util.find_spec("signal_service") is None:
            return
        from signal_service import BUNDLED_REGISTRY

        registry = self.run_dir / "models"
        for model in BUNDLED_REGISTRY.iterdir():
            if model.is_dir() and not (registry / model.name).exists():
                shutil.copytree(model, registry / model.name)
                console.print(f"model registry: {model.name} (bundled) in {registry}")

    def gateway_vault(self, endpoints: Endpoints) -> bool:
        """The gateway's Vault policy and AppRole, and a one-time secret for its first admin while it has no user
        (True then). Nothing when the gateway is not among the services or not installed."""
        wanted = any(s.service_name == "gateway" for s in self.services)
        if not wanted or importlib.util.find_spec("gateway_service") is None:
            return False
        import hvac
        from gateway_service.bootstrap import provision_dev

        client = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
        return provision_dev(client, Path(endpoints.approle_dir), endpoints.redis_url)

    def launch(self, name: str, endpoints: Endpoints | None = None) -> None:
        """Start a service's process unless it runs already (without waiting for it to serve)."""
        spec = self.spec(name)
        process = self.process(name)
        if not process.running():
            env = self.service_env(spec, endpoints or self.stack.endpoints())
            process.start([sys.executable, "-m", spec.module], env=env)

    def start_service(self, name: str, endpoints: Endpoints | None = None, timeout_s: float = 60.0) -> str:
        self.launch(name, endpoints)
        return asyncio.run(self._wait_serving(self.spec(name), timeout_s))

    async def _wait_all(self, specs: list[ServiceSpec], timeout_s: float) -> dict[str, str]:
        states = await asyncio.gather(*(self._wait_serving(spec, timeout_s) for spec in specs))
        return {spec.name: state for spec, state in zip(specs, states, strict=True)}

    async def _wait_serving(self, spec: ServiceSpec, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        state = "UNREACHABLE"
        while time.monotonic() < deadline:
            state = await health_status(spec.address, timeout_s=0.5, security=self.grpc_client())
            if state == "SERVING":
                return state
            if not self.process(spec.name).running():
                return "EXITED"
            await asyncio.sleep(0.1)
        return state

    def exchange_up(self, endpoints: Endpoints, timeout_s: float = 30.0) -> None:
        import httpx
        import hvac

        process = self.process("paper-exchange")
        if process.running():
            return
        client = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
        data = client.secrets.kv.v2.read_secret_version(path="trading/alpaca", raise_on_deleted_version=True)["data"][
            "data"
        ]
        try:
            admin = client.secrets.kv.v2.read_secret_version(
                path="trading/paper-exchange", raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath as missing:
            raise DevStackError(
                "no secret/trading/paper-exchange#admin_key in the dev Vault: make down && make up"
            ) from missing
        # The keys reach the exchange through its environment only (never argv, which `ps` shows). It refuses to
        # replay days a served policy was trained or validated on (--policy-registry).
        registry = self.run_dir / "models"
        guard = ("--policy-registry", str(registry)) if registry.is_dir() else ()
        process.start(
            [sys.executable, "-m", "paper_exchange", "--port", str(self.exchange_port), *self.exchange_args, *guard],
            env={
                "PAPER_EXCHANGE_API_KEY_ID": data["api_key_id"],
                "PAPER_EXCHANGE_API_SECRET_KEY": data["api_secret_key"],
                "PAPER_EXCHANGE_ADMIN_KEY": admin["data"]["data"]["admin_key"],
                **self.exchange_env,
            },
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.exchange_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not process.running():
                raise DevStackError(f"paper exchange exited; log {process.log_file}:\n{process.log_tail()}")
            time.sleep(0.2)
        raise DevStackError(f"paper exchange did not answer at {self.exchange_url}; log {process.log_file}")

    def down(self) -> list[str]:
        stopped = stop_all([self.process(s.name) for s in self.services], timeout_s=15)
        if self.process("paper-exchange").stop():
            stopped.append("paper-exchange")
        return stopped + self.stack.down()

    def status(self) -> dict[str, Any]:
        async def health() -> dict[str, str]:
            security = self.grpc_client()
            return {
                spec.name: await health_status(spec.address, timeout_s=0.5, security=security) for spec in self.services
            }

        states = asyncio.run(health())
        services = {
            spec.name: {
                "address": spec.address,
                "health": states[spec.name],
                "installed": spec.built(),
                "pid": self.process(spec.name).pid(),
                "metrics_port": spec.metrics_port,
            }
            for spec in self.services
        }
        exchange = {
            "url": self.exchange_url,
            "pid": self.process("paper-exchange").pid(),
            "health": "SERVING" if _http_ok(f"{self.exchange_url}/healthz") else "UNREACHABLE",
        }
        return {
            "stack": self.stack.status(),
            "endpoints": self.stack.endpoints().to_dict(),
            "paper_exchange_url": self.exchange_url,
            "paper_exchange": exchange,
            "services": services,
        }


def periods_banner(exchange_url: str, registry_root: Path) -> str:
    """One line: what the exchange replays, and the days each served policy was trained and validated on."""
    import httpx
    from trading_policy import ModelRegistry, RegistryError
    from trading_policy.periods import data_periods

    try:
        replay = httpx.get(f"{exchange_url}/healthz", timeout=2.0).json().get("replay") or {}
    except (httpx.HTTPError, ValueError):
        replay = {}
    text = f"replay: {replay.get('source', '?')} {replay.get('first_day', '?')}..{replay.get('last_day', '?')}"
    registry = ModelRegistry(registry_root)
    for name in registry.names():
        try:
            model = registry.get(name)
            periods = data_periods(model.manifest)
        except RegistryError as error:
            text += f"; {name}: {error}"
            continue
        first_day = replay.get("first_day")
        sample = "replay unknown" if not first_day else "out of sample" if periods.out_of_sample(first_day) else ""
        text += f"; policy {model.name}@{model.version} {periods.describe(replay=False)} ({sample or 'IN SAMPLE'})"
    return text


def _http_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)


RUN_DIR = typer.Option(DEFAULT_RUN_DIR, "--run-dir", help="logs, pids and state of this run")


def up(
    run_dir: Path = RUN_DIR,
    speed: float = typer.Option(2.0, help="paper exchange replay: simulated minutes per second"),
    start: str = typer.Option("2010-01-04", help="paper exchange replay: first day"),
    timeout_s: float = typer.Option(60.0, "--timeout", help="seconds to wait for each service to be healthy"),
) -> None:
    """Start the embedded stack, the paper exchange and every service; wait until each is healthy."""
    platform = Platform(run_dir, exchange_args=("--speed", str(speed), "--start", start))
    try:
        states = platform.up(timeout_s)
    except DevStackError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    failed = [name for name, state in states.items() if state != "SERVING"]
    if failed:
        console.print(f"[red]not healthy: {', '.join(failed)}; see the log above[/red]")
        raise typer.Exit(1)
    if "gateway" in states:
        console.print(f"gateway: {platform.gateway_url} (JWKS at {platform.gateway_url}/.well-known/jwks.json)")
        if platform.gateway_bootstrap_waiting:
            console.print(
                "first admin: `tradectl users bootstrap -u admin` (uses the one-time secret the dev Vault holds at "
                "secret/trading/gateway/bootstrap, once), then `tradectl login -u admin`"
            )
        else:
            console.print("log in: `tradectl login -u <you>` (password and TOTP code)")
        console.print(
            f"dashboard: {platform.gateway_url}/ (log in with a gateway user: username, password and the TOTP code "
            "of its authenticator app; viewers need no code; an admin makes users with `tradectl users create`)"
        )
    console.print("[green]platform up[/green]: `tradectl status`, `tradectl tail <topic>`, `make down` to stop")


def down(run_dir: Path = RUN_DIR) -> None:
    """Stop every service (draining), the paper exchange and the embedded stack."""
    stopped = Platform.from_run_dir(run_dir).down()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


def status(run_dir: Path = RUN_DIR, as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Every service's address and health, the stack's endpoints and the paper exchange's URL."""
    state = Platform.from_run_dir(run_dir).status()
    if as_json:
        print(json.dumps(state, indent=2))
        return
    table = Table(title="platform")
    for column in ("part", "address", "health", "pid"):
        table.add_column(column)
    for name, part in state["stack"].items():
        table.add_row(name, str(part["endpoint"]), "answering" if part["answering"] else "down", str(part["pid"]))
    exchange = state["paper_exchange"]
    table.add_row("paper-exchange", exchange["url"], exchange["health"], str(exchange["pid"] or "-"))
    for name, service in state["services"].items():
        health = service["health"] if service["installed"] else "not installed"
        table.add_row(name, service["address"], health, str(service["pid"] or "-"))
    Console().print(table)
