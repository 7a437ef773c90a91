"""Engines (and connection pools) per database node: for writes, for reads, for monitoring."""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Engine, create_engine

from app.config import Settings
from app.db.routing import PRIMARY, Nodes


def node_url(settings: Settings, address: str) -> URL:
    """The PyMySQL URL of the node at host:port, as the application user."""
    host, _, port = address.rpartition(":")
    return URL.create(
        "mysql+pymysql",
        username=settings.mysql_app_user,
        password=settings.mysql_app_password.get_secret_value(),
        host=host,
        port=int(port),
        database=settings.mysql_database,
        query={"charset": "utf8mb4"},
    )


def make_engine(
    settings: Settings, address: str, *, timeout_s: float | None = None, **options: Any
) -> Engine:
    """An engine with a bounded pool and short timeouts, so a dead node fails fast.

    TIMEOUT_S, when given, bounds connecting and each read and write instead of the settings.
    """
    timeouts = {
        "connect_timeout": timeout_s or settings.db_connect_timeout,
        "read_timeout": timeout_s or settings.db_read_timeout,
        "write_timeout": timeout_s or settings.db_read_timeout,
    }
    defaults: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_connect_timeout,
        "pool_recycle": 1800,
        "pool_pre_ping": True,
    }
    return create_engine(
        node_url(settings, address), connect_args=timeouts, **{**defaults, **options}
    )


def replica_addresses(settings: Settings) -> dict[str, str]:
    """Replica name -> host:port."""
    return dict(zip(settings.replica_names(), settings.db_replicas, strict=True))


# Read engines pay one round trip per read, not three: in autocommit there is nothing to roll
# back when a connection returns to the pool, and no ping before use: a connection that died
# with its server fails the read, which is retried on a fresh connection (db/connections.py).
READ_ENGINE: dict[str, Any] = {
    "isolation_level": "AUTOCOMMIT",
    "pool_reset_on_return": None,
    "pool_pre_ping": False,
}


def make_nodes(settings: Settings) -> Nodes:
    """The writer engine of the primary, and an autocommit read engine per node."""
    readers = {PRIMARY: make_engine(settings, settings.db_primary, **READ_ENGINE)}
    for name, address in replica_addresses(settings).items():
        readers[name] = make_engine(settings, address, **READ_ENGINE)
    return Nodes(writer=make_engine(settings, settings.db_primary), readers=readers)


def make_monitor_engines(settings: Settings) -> dict[str, Engine]:
    """One single-connection engine per replica for the health monitor, apart from request pools.

    No ping before each poll: a poll that meets a dead connection tries a fresh one itself.
    """
    return {
        name: make_engine(settings, address, pool_size=1, max_overflow=0, **READ_ENGINE)
        for name, address in replica_addresses(settings).items()
    }


def make_second_opinion_engine(settings: Settings) -> Engine:
    """The monitor's engine on the primary, asked only when a replica's heartbeat looks old.

    One connection per replica thread at most, made on first use (never, while the heartbeat
    writer runs and the replicas keep up). Its timeouts are the eject threshold: a primary that
    hangs must not hold back the verdict on a replica for longer than that.
    """
    return make_engine(
        settings,
        settings.db_primary,
        timeout_s=settings.replica_lag_eject_s,
        pool_size=max(len(settings.db_replicas), 1),
        max_overflow=0,
        **READ_ENGINE,
    )
