"""One SQLAlchemy engine (and connection pool) per database node."""

from __future__ import annotations

from sqlalchemy import URL, Engine, create_engine

from app.config import Settings


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


def make_engine(settings: Settings, address: str) -> Engine:
    """An engine with a bounded pool and short timeouts, so a dead node fails fast."""
    return create_engine(
        node_url(settings, address),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_connect_timeout,
        pool_recycle=1800,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": settings.db_connect_timeout,
            "read_timeout": settings.db_read_timeout,
            "write_timeout": settings.db_read_timeout,
        },
    )


def make_engines(settings: Settings) -> dict[str, Engine]:
    """Engines keyed by node name: 'primary', 'replica-1', ..."""
    engines = {"primary": make_engine(settings, settings.db_primary)}
    for name, address in zip(settings.replica_names(), settings.db_replicas, strict=True):
        engines[name] = make_engine(settings, address)
    return engines
