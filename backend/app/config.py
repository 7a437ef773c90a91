"""Typed settings of the API, read once from the environment (documented in .env.example)."""

from __future__ import annotations

import socket
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def split_commas(value: object) -> object:
    """A list setting from the environment: comma-separated, blanks dropped (empty: none)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A list setting (DB_REPLICAS, NATS_SERVERS, ...), for every process's settings class.
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_commas)]

# Passwords shipped in .env.example (and k8s/secrets.env.example's placeholder): fine on a
# laptop, refused anywhere else.
DEVELOPMENT_SECRETS = frozenset(
    {
        "dev-app-password",
        "dev-admin-password",
        "dev-repl-password",
        "dev-redis-password",
        "dev-nats-password",
        "dev-nats-relay-password",
        "dev-nats-worker-password",
        "dev-nats-reader-password",
        "dev-nats-admin-password",
        "dev-nats-route-password",
        "dev-nats-system-password",
        "dev-secret-key-change-me",
        "replace-me",
    }
)


# Shortest APP_SECRET_KEY production accepts (e.g. `openssl rand -hex 32` gives 64).
MIN_SECRET_KEY_LENGTH = 16


class Settings(BaseSettings):
    """Everything the API reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    app_env: Literal["development", "test", "production"] = "development"
    # Shown in X-Served-By; in compose, where replicas share one environment, the container name.
    api_name: str = Field(default_factory=socket.gethostname)
    log_level: str = "INFO"

    # host:port of the primary, and of each replica in order (replica-1, replica-2, ...).
    db_primary: str
    db_replicas: CommaList = ()
    mysql_database: str
    mysql_app_user: str
    mysql_app_password: SecretStr
    db_pool_size: int = Field(4, ge=1)
    db_max_overflow: int = Field(4, ge=0)
    db_connect_timeout: int = Field(2, ge=1)
    db_read_timeout: int = Field(10, ge=1)
    # Reads (on replicas, and on the primary as their fallback) and replica polls wait at most
    # this long for each round trip, connecting included: a frozen node (a paused VM, a stopped
    # process with its port open) costs a read this much before it goes elsewhere, never the
    # whole request.
    db_read_deadline_s: float = Field(1.0, gt=0)
    # An API write (its retries, a wait for a new primary, every round trip, the COMMIT) ends within
    # this, answered 503 with Retry-After when the primary does not answer in time. Below nginx's
    # NGINX_ANSWER_TIMEOUT_S, so that nginx reads its own timeout as "this replica is frozen" and
    # sends a keyed write to the next one (docs/reliability.md). Queue workers' writes keep
    # DB_READ_TIMEOUT per round trip.
    db_write_deadline_s: float = Field(2.5, gt=0)
    # Every session bounds what a frozen peer's transaction can cost the others: a row lock is
    # waited for at most DB_LOCK_WAIT_TIMEOUT_S (MariaDB's default: 50 s), and a transaction left
    # idle (its process paused mid-way) is rolled back by the server, its locks freed, after
    # DB_IDLE_TRANSACTION_TIMEOUT_S (MariaDB's default: never).
    db_lock_wait_timeout_s: int = Field(5, ge=1)
    db_idle_transaction_timeout_s: int = Field(5, ge=1)
    # TLS to the database nodes: a CA file makes it required and verified; empty, it is off.
    db_tls_ca: str = ""

    redis_url: str = "redis://127.0.0.1:6380/0"
    # Redis's requirepass (the URL carries no secret: it may sit in a config map).
    redis_password: SecretStr = SecretStr("")
    redis_socket_timeout: float = Field(0.2, gt=0)
    redis_slow_call_s: float = Field(0.05, gt=0)

    api_max_body_bytes: int = Field(65536, ge=1024)
    # Signs consistency tokens; every API replica must share it. No default: never a secret in code.
    app_secret_key: SecretStr
    consistency_cookie_max_age_s: int = Field(300, ge=1)

    # False turns the cache off entirely (every read BYPASSes it): the staircase's early stages.
    cache_enabled: bool = True
    cache_ttl_s: float = Field(60.0, gt=0)
    cache_ttl_jitter: float = Field(0.1, ge=0, lt=1)
    cache_negative_ttl_s: float = Field(5.0, gt=0)
    cache_stale_grace_s: float = Field(10.0, ge=0)
    cache_tombstone_ttl_s: float = Field(30.0, gt=0)
    cache_lock_ttl_ms: int = Field(2000, ge=10)
    cache_lock_wait_ms: int = Field(500, ge=0)
    cache_xfetch_beta: float = Field(1.0, ge=0)
    cache_invalidation_retry_s: float = Field(0.2, ge=0)
    cache_admission_window_s: float = Field(60.0, ge=0)
    cache_direct_loads: bool = True
    # In-process copies of hot entries, invalidated by Redis client tracking (0 disables).
    near_cache_ttl_s: float = Field(30.0, ge=0)
    near_cache_max_entries: int = Field(10_000, ge=1)

    # Calls slower than this count as failures of a database node's breaker.
    db_slow_call_s: float = Field(1.0, gt=0)
    # Retries of transient database errors (exponential backoff with full jitter, bounded).
    db_retry_attempts: int = Field(3, ge=1)
    db_retry_base_s: float = Field(0.02, gt=0)
    db_retry_max_wait_s: float = Field(0.2, gt=0)
    # Retry budget per worker: each first attempt earns RATIO of a retry, up to RESERVE retries.
    db_retry_budget_ratio: float = Field(0.1, ge=0)
    db_retry_budget_reserve: float = Field(10.0, ge=1)

    breaker_window: int = Field(20, ge=1)
    breaker_window_s: float = Field(10.0, gt=0)
    breaker_min_calls: int = Field(5, ge=1)
    breaker_failure_rate: float = Field(0.5, gt=0, le=1)
    breaker_open_s: float = Field(2.0, gt=0)
    breaker_half_open_probes: int = Field(1, ge=1)

    # How often each worker reads the manual breaker overrides (`python -m app.processes.cli
    # breaker`); 0 disables reading them (unit tests).
    breaker_override_poll_s: float = Field(1.0, ge=0)

    # Writes (POST, PATCH, DELETE) need an X-API-Key; reads may be anonymous.
    writes_need_api_key: bool = True
    # How long a worker remembers a key lookup: the longest a revoked key keeps working.
    api_key_cache_ttl_s: float = Field(5.0, ge=0)
    # Lookups per second (per worker) of key ids never seen to exist: made-up ids cost no more.
    api_key_unknown_lookups_per_s: float = Field(10.0, gt=0)
    # Per-key limits by tier (GCRA in Redis): steady requests/s and the burst above it.
    rate_limit_enabled: bool = True
    rate_limit_critical_per_s: float = Field(200.0, gt=0)
    rate_limit_critical_burst: int = Field(400, ge=1)
    rate_limit_standard_per_s: float = Field(20.0, gt=0)
    rate_limit_standard_burst: int = Field(40, ge=1)
    # Per address, for requests whose key the API refused (unknown, revoked): as nginx's
    # anonymous limit, so a flood of made-up keys is no way around it.
    rate_limit_refused_per_s: float = Field(50.0, gt=0)
    rate_limit_refused_burst: int = Field(100, ge=1)
    # While Redis is down: "local" (a per-worker limit, the tier's rate / RATE_LIMIT_LOCAL_SHARE)
    # or "closed" (503 + Retry-After).
    rate_limit_critical_redis_down: Literal["local", "closed"] = "local"
    rate_limit_standard_redis_down: Literal["local", "closed"] = "closed"
    # Worker processes sharing one limit (API replicas x gunicorn workers; the launcher sets it).
    rate_limit_local_share: int = Field(1, ge=1)

    replica_poll_interval_s: float = Field(0.25, ge=0)
    replica_lag_eject_s: float = Field(1.0, gt=0)
    replica_lag_readmit_s: float = Field(0.5, gt=0)
    replica_readmit_after_s: float = Field(2.0, ge=0)
    ryw_wait_s: float = Field(0.005, ge=0)
    # How often a worker checks which node is the primary besides when something suggests it
    # moved (0: only then), and how long a write refused as read-only waits for a new primary.
    topology_check_interval_s: float = Field(5.0, ge=0)
    topology_wait_s: float = Field(3.0, ge=0)
    read_fallback_max: int = Field(8, ge=1)
    read_fallback_lease_s: float = Field(10.0, gt=0)
    heartbeat_interval_s: float = Field(0.25, gt=0)
    # Touched after every successful beat, for container health checks (empty: not written).
    heartbeat_health_file: str = ""
    heartbeat_pid_file: str = ""

    # The message queue (docs/messaging.md): the broker's nodes, the account of the relays,
    # workers, push and purgers, and the system account /readyz asks the nodes' state with.
    nats_servers: CommaList = ("nats://127.0.0.1:4222",)
    nats_user: str = "app"
    nats_password: SecretStr = SecretStr("")
    nats_system_user: str = "system"
    nats_system_password: SecretStr = SecretStr("")
    events_stream: str = "EVENTS"
    events_stream_replicas: int = Field(3, ge=1, le=5)
    events_max_age_s: float = Field(604800.0, gt=0)
    events_duplicate_window_s: float = Field(120.0, gt=0)
    outbox_batch: int = Field(200, ge=1)
    outbox_poll_interval_s: float = Field(0.5, gt=0)
    outbox_retention_s: float = Field(3600.0, ge=0)
    idempotency_retention_s: float = Field(86400.0, gt=0)
    relay_lease_s: float = Field(5.0, gt=0)
    relay_backoff_max_s: float = Field(2.0, gt=0)
    consumer_name: str = "counters"
    consumer_ack_wait_s: float = Field(5.0, gt=0)
    consumer_max_deliver: int = Field(5, ge=1)
    consumer_batch: int = Field(50, ge=1)
    dead_letter_stream: str = "DEADLETTER"
    # How long /readyz reuses what it read of the broker (its monitoring port costs a round trip).
    broker_check_interval_s: float = Field(2.0, ge=0)
    # A relay's or worker's own name, metrics port (0: none) and address, and pid file (set by
    # the launcher; in compose the metrics listen on every address, for Prometheus).
    process_name: str = Field(default_factory=socket.gethostname)
    metrics_port: int = Field(0, ge=0)
    metrics_host: str = "127.0.0.1"
    pid_file: str = ""

    @model_validator(mode="after")
    def refuse_development_secrets(self) -> Settings:
        """In production, an empty or example secret is a misconfiguration, not a default, and
        the signing key must be long enough that nobody forges tokens (which could force every
        read onto the primary, past the cache) by guessing it."""
        if self.app_env == "production":
            for name in ("mysql_app_password", "app_secret_key"):
                self.refuse_example(name)
            if len(self.app_secret_key.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
                problem = f"APP_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters"
                raise ValueError(problem)
            self.refuse_example("redis_password")
        return self

    def refuse_example(self, name: str) -> None:
        """ValueError when secret setting NAME is empty or a development value."""
        value = getattr(self, name).get_secret_value()
        if not value:
            raise ValueError(f"{name.upper()} is empty; set a real one")
        if value in DEVELOPMENT_SECRETS:
            raise ValueError(f"{name.upper()} is a development secret; set a real one")

    def replica_names(self) -> list[str]:
        """replica-1, replica-2, ... in the order of DB_REPLICAS."""
        return [f"replica-{i + 1}" for i in range(len(self.db_replicas))]

    def members(self) -> list[str]:
        """Every database node (host:port): DB_PRIMARY, then DB_REPLICAS. After a failover any of
        them may be the primary (app.db.topology)."""
        return [self.db_primary, *self.db_replicas]


def default(name: str) -> Any:
    """The default of setting NAME: the one place a policy's default value is written."""
    return Settings.model_fields[name].default
