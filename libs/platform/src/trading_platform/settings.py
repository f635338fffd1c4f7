"""Settings: one frozen, validated object per service, read once at start-up (pydantic-settings).

Environment variables use the prefix TRADING_ and `__` for nesting: TRADING_KAFKA__BOOTSTRAP_SERVERS,
TRADING_RISK__MAX_ORDER_QUANTITY. Unknown keys are refused. A secret field holds either its value or a Vault
reference `vault:<mount>/<path>#<key>` that `load_settings` resolves through the configured Vault auth; secrets are
SecretStr, so they never print. A missing or invalid key stops the service with a message naming its variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trading_platform import vault as vault_module
from trading_platform.messaging.connection import KafkaConnection

ENV_PREFIX = "TRADING_"


class Section(BaseModel):
    """Base of every settings section: frozen and strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(Section):
    bootstrap_servers: str = Field(min_length=1, description="host:port[,host:port]")
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="SASL_* authenticates with SCRAM-SHA-512 as `username`"
    )
    username: str | None = Field(None, description="the service's Kafka principal (SCRAM)")
    password: SecretStr | None = Field(None, description="value or vault:secret/trading/<service>/kafka#password")
    namespace: str = Field("", description="prefix applied to every topic name (isolated test or demo runs)")
    session_timeout_ms: int = Field(6000, ge=1000)
    heartbeat_interval_ms: int = Field(500, ge=50)
    rebalance_timeout_ms: int = Field(2000, ge=500)
    fetch_max_wait_ms: int = Field(
        500, ge=1, description="longest a fetch waits on the broker for data (it answers as soon as data arrives)"
    )

    @model_validator(mode="after")
    def _credentials_for_sasl(self) -> KafkaSettings:
        if self.security_protocol != "PLAINTEXT" and not (self.username and self.password):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs TRADING_KAFKA__USERNAME and TRADING_KAFKA__PASSWORD"
            )
        return self

    def connection(self) -> KafkaConnection:
        """What every Kafka client of the service connects with (resolve Vault references first: load_settings)."""
        return KafkaConnection(
            self.bootstrap_servers,
            self.security_protocol,
            self.username,
            self.password.get_secret_value() if self.password else None,
        )

    def group_options(self) -> dict[str, int]:
        return {
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "rebalance_timeout_ms": self.rebalance_timeout_ms,
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
        }


class RedisSettings(Section):
    url: str = Field("redis://127.0.0.1:16379/0", pattern=r"^rediss?://")


class VaultSettings(Section):
    addr: str | None = Field(None, description="Vault address; unset = no Vault (only literal secrets allowed)")
    auth_method: Literal["token", "approle", "kubernetes"] = "token"
    token: SecretStr | None = None
    token_file: Path | None = None
    role_id: str | None = None
    secret_id: SecretStr | None = None
    approle_file: Path | None = Field(None, description="JSON file with role_id and secret_id")
    kubernetes_role: str | None = None
    kubernetes_jwt_path: Path = vault_module.KUBERNETES_JWT_PATH


class TelemetrySettings(Section):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus endpoint port; 0 = off")
    metrics_host: str = Field(
        "127.0.0.1", min_length=1, description="address the metrics endpoint listens on; 0.0.0.0 opens it (Kubernetes)"
    )
    spans_file: Path | None = Field(None, description="append finished spans as JSON lines here")
    trace_sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="share of the traces this service starts that are recorded (a trace continued from a message "
        "keeps its sender's decision); 1 = every trace",
    )


class GrpcSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 = any free port")
    grace_s: float = Field(5.0, ge=0)
    reflection: bool = Field(False, description="serve gRPC reflection (dev only: it describes the whole API)")
    health_port: int = Field(
        0, ge=0, le=65535, description="plaintext port serving only grpc.health.v1 (Kubernetes probes); 0 = off"
    )
    tls_alt_names: tuple[str, ...] = Field(
        (), description="extra DNS names in the service's certificate (Kubernetes: <service>.<namespace>.svc)"
    )


class DeploymentSettings(Section):
    colour: Literal["blue", "green"] = "blue"
    # live: consume in the live group, publish to live topics, talk to the broker.
    # shadow: shadow group, shadow.<topic> outputs, never submits to the broker (blue-green idle colour).
    role: Literal["live", "shadow"] = "live"
    # blue_green: the role is not fixed here but read from Redis (deploy:<service>:live names the live colour) and
    # followed at run time: `tradectl deploy promote` flips it (trading_platform.deployment).
    blue_green: bool = False

    @property
    def shadow(self) -> bool:
        return self.role == "shadow"


class BrokerSettings(Section):
    """The broker connection (Alpaca, or the paper exchange in dev): used by market-data and execution."""

    base_url: str = Field("", description="Alpaca API base URL (the paper exchange's in dev); empty = Alpaca paper")
    trading_stream_url: str = Field("", description="trade_updates websocket; default: base_url as ws + /stream")
    data_stream_url: str = Field("", description="stocks stream websocket; default: base_url as ws + /v2/<feed>")
    api_key_id: SecretStr = Field(description="value or vault:secret/trading/alpaca#api_key_id")
    api_secret_key: SecretStr = Field(description="value or vault:secret/trading/alpaca#api_secret_key")
    paper: bool = True
    feed: Literal["iex", "sip"] = "iex"

    def stream_url(self, path: str) -> str | None:
        return self.base_url.replace("http", "ws", 1) + path if self.base_url else None


class ServiceSettings(BaseSettings):
    """What every service needs. A service subclasses it and adds its own section."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", frozen=True, extra="forbid", case_sensitive=False
    )

    service_name: str = Field(min_length=1)
    kafka: KafkaSettings
    redis: RedisSettings = RedisSettings()
    vault: VaultSettings = VaultSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    grpc: GrpcSettings = GrpcSettings()
    deployment: DeploymentSettings = DeploymentSettings()


class ConfigError(SystemExit):
    """Bad configuration: the service must not start. The message names every bad key as its env variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


S = TypeVar("S", bound=ServiceSettings)


def env_name(location: tuple[str | int, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part) for part in location).upper()


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Read settings from the environment (and overrides), resolve Vault references, or raise ConfigError."""
    try:
        settings = cls(**overrides)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = env_name(item["loc"])
            if item["type"] == "missing":
                problems += [f"{env_name(loc)} is required" for loc in _required_leaves(cls, tuple(item["loc"]))]
            elif item["type"] == "extra_forbidden":
                problems.append(f"{name} is not a known setting")
            else:
                problems.append(f"{name}: {item['msg']} (got {str(item.get('input'))[:80]!r})")
        raise ConfigError(problems) from None
    return resolve_secrets(settings)


def _required_leaves(cls: type[BaseModel], location: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """A missing section is reported as its missing required keys (TRADING_KAFKA__BOOTSTRAP_SERVERS)."""
    model: Any = cls
    for part in location:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        model = field.annotation if field is not None else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        leaves = [(*location, name) for name, field in model.model_fields.items() if field.is_required()]
        return leaves or [location]
    return [location]


def vault_client(settings: VaultSettings) -> Any:
    if not settings.addr:
        raise ConfigError(["TRADING_VAULT__ADDR is required to resolve vault: references"])
    token = settings.token.get_secret_value() if settings.token else None
    if token is None and settings.token_file is not None:
        token = settings.token_file.read_text().strip()
    try:
        return vault_module.login(
            settings.addr,
            settings.auth_method,
            token=token,
            role_id=settings.role_id,
            secret_id=settings.secret_id.get_secret_value() if settings.secret_id else None,
            approle_file=settings.approle_file,
            kubernetes_role=settings.kubernetes_role,
            kubernetes_jwt_path=settings.kubernetes_jwt_path,
        )
    except vault_module.SecretAccessError as error:
        raise ConfigError([str(error)]) from None


def resolve_secrets(settings: S) -> S:
    """Replace every SecretStr whose value is a `vault:` reference by the secret it points to."""
    client = None
    problems: list[str] = []

    def resolve(model: BaseModel, location: tuple[str, ...]) -> BaseModel:
        nonlocal client
        updates: dict[str, Any] = {}
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                resolved = resolve(value, (*location, name))
                if resolved is not value:
                    updates[name] = resolved
            elif isinstance(value, SecretStr) and value.get_secret_value().startswith("vault:"):
                if isinstance(model, VaultSettings):
                    continue
                try:
                    mount, path, key = vault_module.parse_reference(value.get_secret_value())
                    if client is None:
                        client = vault_client(settings.vault)
                    updates[name] = SecretStr(str(vault_module.read_secret(client, path, key, mount)))
                except (vault_module.SecretAccessError, ConfigError) as error:
                    problems.append(f"{env_name((*location, name))}: {error}")
        return model.model_copy(update=updates) if updates else model

    resolved = resolve(settings, ())
    if problems:
        raise ConfigError(problems)
    return resolved  # type: ignore[return-value]
