"""Gateway settings (TRADING_GATEWAY__*): the HTTP listener, token lifetimes, login throttling, Vault paths."""

from __future__ import annotations

from typing import Annotated

import limits
from pydantic import AfterValidator, Field, model_validator
from trading_platform.settings import Section, ServiceSettings


# -- limits_config: rate limits, body cap, CORS (the security middleware reads them from the engine's config) ------
def _rate_limits(value: str) -> str:
    """`N/period` items separated by `;` (the `limits` notation: `20/second;600/minute`); every one applies."""
    try:
        items = limits.parse_many(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a rate limit list like '20/second;600/minute'") from None
    if not items or any(item.amount < 1 for item in items):
        raise ValueError(f"{value!r} must name at least one limit of at least 1 request")
    return value


def _origins(value: str) -> str:
    """Comma-separated origins (`https://desk.example.com`, scheme://host[:port], nothing after): exact matches."""
    for origin in (part.strip() for part in value.split(",") if part.strip()):
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest or origin == "*":
            raise ValueError(f"{origin!r} is not an origin like https://desk.example.com (no path, no wildcard)")
    return value


RateLimits = Annotated[str, AfterValidator(_rate_limits)]
Origins = Annotated[str, AfterValidator(_origins)]


class GatewayConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(18080, ge=0, le=65535, description="HTTP port; 0 = any free port")
    trusted_proxies: str = Field(
        "",
        description="comma-separated addresses (or *) whose X-Forwarded-For is believed as the client address; "
        "empty = none (the address that connects is the client's: login throttling counts it)",
    )
    access_token_ttl_s: int = Field(300, ge=30, le=3600, description="lifetime of an access token (JWT)")
    refresh_token_ttl_s: int = Field(8 * 3600, ge=60, description="a session lives this long after its last refresh")
    session_max_s: int = Field(24 * 3600, ge=60, description="a session ends this long after login, refreshed or not")
    api_key_max_ttl_s: int = Field(90 * 24 * 3600, ge=60, description="the longest lifetime an API key may be given")
    key_rotation_s: int = Field(24 * 3600, ge=60, description="the signing key is replaced after this long")
    key_reload_s: float = Field(10.0, gt=0, description="how often the keys are re-read from Vault (other instances)")
    vault_mount: str = "secret"
    vault_path: str = Field("trading/gateway", description="KV v2 path under which signing, jwks, bootstrap live")
    redis_prefix: str = Field("gateway:", description="prefix of the gateway's own Redis keys")
    password_min_length: int = Field(12, ge=8)
    totp_issuer: str = "trading-platform"
    # Failed logins, per username and per client address: after `*_backoff_after` failures in the window every
    # attempt waits an exponentially growing delay; after `*_lockout_after` the username or address is locked.
    login_window_s: int = Field(900, ge=1)
    user_backoff_after: int = Field(3, ge=1)
    user_lockout_after: int = Field(10, ge=1)
    address_backoff_after: int = Field(20, ge=1)
    address_lockout_after: int = Field(100, ge=1)
    lockout_s: int = Field(900, ge=1)
    backoff_base_ms: int = Field(500, ge=1)
    backoff_max_ms: int = Field(30_000, ge=1)
    # Argon2id cost (argon2-cffi's defaults are RFC 9106's second recommendation).
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65536, ge=8192)
    argon2_parallelism: int = Field(4, ge=1)
    # The read model and the REST API (readmodel/, routes/api_*.py): caps on memory (the oldest row is evicted),
    # the live stream, page and range caps, and the services the writes and the audit reads are relayed to.
    readmodel_orders: int = Field(50_000, ge=1, description="orders kept (with their events, fills and reports)")
    readmodel_events_per_order: int = Field(50, ge=1, description="events, fills and broker reports kept per order")
    readmodel_signals: int = Field(50_000, ge=1, description="signals kept (the orders' lineage joins them)")
    readmodel_rows: int = Field(20_000, ge=1, description="rows of each other table (analytics, decisions, ...)")
    readmodel_points: int = Field(20_000, ge=1, description="points of each series (equity, denials, breaches)")
    readmodel_history_s: int = Field(7 * 24 * 3600, ge=60, description="how far back the event topics are read")
    stream_queue_size: int = Field(1000, ge=2, description="updates queued per live client before it is dropped")
    stream_heartbeat_s: float = Field(15.0, gt=0, description="a comment line this often on an idle stream")
    api_max_range_s: int = Field(92 * 24 * 3600, ge=60, description="the longest from..to of a list")
    risk_address: str = "127.0.0.1:50054"
    oms_address: str = "127.0.0.1:50053"
    audit_address: str = "127.0.0.1:50056"
    grpc_timeout_s: float = Field(5.0, gt=0, description="deadline of a relayed call")
    execution_address: str = "127.0.0.1:50055"
    model_registry: str = Field("", description="the model registry directory promotions write; empty = none")

    # limits_config (ratelimit.py, bodylimit.py, headers.py): fixed windows in Redis, every listed limit applies.
    rate_limit_user: RateLimits = Field("30/second;1200/minute", description="per user (verified token), any route")
    rate_limit_address: RateLimits = Field("60/second;3000/minute", description="per client address, any route")
    rate_limit_auth: RateLimits = Field(
        "30/second;600/minute", description="per client address, on top: the /api/v1/auth writes (login, refresh...)"
    )
    rate_limit_timeout_s: float = Field(
        1.0, gt=0, le=30, description="longest the limits' Redis check may take; past it the request is refused (503)"
    )
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024, description="a larger request body is a 413")
    cors_origins: Origins = Field("", description="comma-separated origins allowed cross-origin; empty = same origin")

    @property
    def cors_allowed(self) -> frozenset[str]:
        return frozenset(part.strip().lower() for part in self.cors_origins.split(",") if part.strip())

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        if self.user_backoff_after > self.user_lockout_after:
            raise ValueError("user_backoff_after must not exceed user_lockout_after")
        if self.address_backoff_after > self.address_lockout_after:
            raise ValueError("address_backoff_after must not exceed address_lockout_after")
        if self.refresh_token_ttl_s > self.session_max_s:
            raise ValueError("refresh_token_ttl_s must not exceed session_max_s")
        if self.key_rotation_s <= self.access_token_ttl_s:
            raise ValueError("key_rotation_s must be longer than access_token_ttl_s")
        return self


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    gateway: GatewayConfig = GatewayConfig()
