"""Settings of the edge purger, from its environment (.env.example, "Edge cache"). It needs the
broker and its nginx's cache folder only: no database, no Redis."""

from __future__ import annotations

import socket

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config import CommaList


class PurgerSettings(BaseSettings):
    """Everything an edge purger reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    app_env: str = "development"
    log_level: str = "INFO"
    process_name: str = "edge-purger"
    pid_file: str = ""
    nats_servers: CommaList = ("nats://127.0.0.1:4222",)
    nats_user: str = "app"
    nats_password: SecretStr = SecretStr("")
    events_stream: str = "EVENTS"
    # The workers' consumer: a derived field's purge waits until it has acknowledged the event.
    consumer_name: str = "counters"
    # Which edge (nginx instance) this purger serves: its durable consumer is purger-<EDGE_ID>.
    edge_id: str = Field(default_factory=socket.gethostname)
    # nginx's edge cache folder (proxy_cache_path): a copy is purged by deleting its file.
    edge_cache_dir: str
    # The switch: nginx serves its copies while <file>-<this second> exists (nginx.py).
    edge_following_file: str
    # How far ahead the purger leases the switch: a killed or frozen purger costs the edge its
    # copies after this long, by itself.
    edge_lease_s: int = Field(3, ge=1)
    # Copies live this long without a purge; events older than this need no purge.
    edge_cache_ttl_s: int = Field(600, ge=1)
    # Every purge is done again this long after the first: a refill that read the old version
    # before the write and reached nginx after the first purge is dropped too (docs/caching.md).
    edge_purge_repeat_s: float = Field(3.0, gt=0)
    # And once soon after the first: a refill that read Redis a moment before the write's
    # invalidation, and reached nginx a moment after the purge (measured: its old copy stayed
    # until the next purge, 170-220 ms in the freshness test), is dropped within this.
    edge_purge_soon_s: float = Field(0.03, gt=0)
    # Behind more than this (commit to purge), the edge stops serving copies until caught up.
    edge_purge_max_lag_s: float = Field(2.0, gt=0)
    # Idle, the purger asks the broker this often whether it is still there.
    edge_purge_check_s: float = Field(0.5, gt=0)
    metrics_port: int = Field(0, ge=0)
    metrics_host: str = "127.0.0.1"

    @property
    def durable(self) -> str:
        """The purger's own durable consumer (its position survives a restart)."""
        return "purger-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in self.edge_id)
