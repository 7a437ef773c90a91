"""Engines (and connection pools) per database node: for writes, for reads, for monitoring."""

from __future__ import annotations

import functools
import math
import ssl
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import URL, Engine, create_engine

from app.config import Settings
from app.db.deadlines import bounded
from app.db.routing import PRIMARY, Nodes
from app.db.topology import current_primary, replica_name


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


@functools.cache
def tls_context(ca_file: str) -> ssl.SSLContext:
    """One verifying TLS context per CA file and process: building one loads the CA bundle."""
    return ssl.create_default_context(cafile=ca_file)


def tls_args(settings: Settings) -> dict[str, Any]:
    """PyMySQL's TLS arguments: required and verified against DB_TLS_CA when it is set, else off.

    Off says so explicitly: left to itself, PyMySQL (1.2) tries TLS when the server offers it and
    builds a new context for every connection to find out, which loads the CA bundle each time
    (23 ms of CPU per connection on these machines), even with a server that has no TLS.
    """
    if settings.db_tls_ca:
        return {"ssl": tls_context(settings.db_tls_ca)}
    return {"ssl_disabled": True}


def capped_bounds(lock_s: int, idle_s: int, deadline_s: float | None) -> tuple[int, int]:
    """The (lock wait, idle) bounds of a session whose writes have DEADLINE_S (None: LOCK_S and
    IDLE_S as they are). A row lock is waited for at most half the deadline (at least 1 s, the
    server counts whole seconds), so that a write whose lock wait ended still has the time to
    run again whole; a transaction left idle by a frozen process is rolled back within the
    deadline, its rows (its Idempotency-Key's, first of all) freed before nginx sends that write
    to another replica."""
    if deadline_s is None:
        return lock_s, idle_s
    return min(lock_s, max(1, math.floor(deadline_s / 2))), min(idle_s, math.ceil(deadline_s))


def session_bounds(settings: Settings, deadline_s: float | None = None) -> str:
    """The statement every connection runs first: how long its transactions may wait for a row
    lock, and stay open while idle (the server then rolls back and closes the connection);
    capped by DEADLINE_S, an API write's (capped_bounds)."""
    lock, idle = capped_bounds(
        settings.db_lock_wait_timeout_s, settings.db_idle_transaction_timeout_s, deadline_s
    )
    return f"SET SESSION innodb_lock_wait_timeout = {lock}, idle_transaction_timeout = {idle}"


def make_engine(
    settings: Settings,
    address: str,
    *,
    timeout_s: float | None = None,
    bounds: str | None = None,
    **options: Any,
) -> Engine:
    """An engine with a bounded pool and short timeouts, so a dead node fails fast.

    TIMEOUT_S, when given, bounds connecting and each read and write instead of the settings.
    BOUNDS, when given, is the session's first statement instead of session_bounds(settings).
    """
    timeouts = {
        "connect_timeout": timeout_s or settings.db_connect_timeout,
        "read_timeout": timeout_s or settings.db_read_timeout,
        "write_timeout": timeout_s or settings.db_read_timeout,
        "init_command": bounds or session_bounds(settings),
    }
    defaults: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_connect_timeout,
        "pool_recycle": 1800,
        "pool_pre_ping": True,
    }
    return create_engine(
        node_url(settings, address),
        connect_args={**timeouts, **tls_args(settings)},
        **{**defaults, **options},
    )


# Read engines pay one round trip per read, not three: in autocommit there is nothing to roll
# back when a connection returns to the pool, and no ping before use: a connection that died
# with its server fails the read, which is retried on a fresh connection (db/connections.py).
READ_ENGINE: dict[str, Any] = {
    "isolation_level": "AUTOCOMMIT",
    "pool_reset_on_return": None,
    "pool_pre_ping": False,
}


class Engines:
    """The engines of every member address, each made once: a worker that follows the primary
    to another member (topology.py) reuses the pools it already has."""

    def __init__(self, settings: Settings, write_deadline_s: float | None = None) -> None:
        """WRITE_DEADLINE_S: the deadline of this process's writes (an API worker's), which also
        caps its sessions' lock and idle bounds (session_bounds)."""
        self.settings, self.write_deadline_s = settings, write_deadline_s
        self._made: dict[tuple[str, str], Engine] = {}
        self._lock = threading.Lock()

    def _get(self, kind: str, address: str, make: Callable[[], Engine]) -> Engine:
        with self._lock:
            if (kind, address) not in self._made:
                self._made[kind, address] = make()
            return self._made[kind, address]

    def writer(self, address: str) -> Engine:
        """Transactions for writes, each round trip bounded by the unit of work's deadline
        (db/deadlines.py), and at most DB_READ_TIMEOUT."""
        settings = self.settings
        bounds = session_bounds(settings, self.write_deadline_s)
        return self._get(
            "writer",
            address,
            lambda: bounded(
                make_engine(settings, address, bounds=bounds), float(settings.db_read_timeout)
            ),
        )

    def reader(self, address: str) -> Engine:
        """Autocommit reads, each round trip bounded by DB_READ_DEADLINE_S."""
        deadline = self.settings.db_read_deadline_s
        return self._get(
            "reader",
            address,
            lambda: make_engine(self.settings, address, timeout_s=deadline, **READ_ENGINE),
        )

    def monitor(self, address: str) -> Engine:
        """One connection for the replica monitor's polls, apart from request pools. No ping
        before each poll: a poll that meets a dead connection tries a fresh one itself. Bounded
        like reads: a frozen replica's poll gives up within DB_READ_DEADLINE_S."""
        return self._get(
            "monitor",
            address,
            lambda: make_engine(
                self.settings,
                address,
                timeout_s=self.settings.db_read_deadline_s,
                pool_size=1,
                max_overflow=0,
                **READ_ENGINE,
            ),
        )

    def second_opinion(self, address: str) -> Engine:
        """The monitor's engine on the primary, asked only when a replica's heartbeat looks old.

        One connection per replica thread at most, made on first use (never, while the heartbeat
        writer runs and the replicas keep up). Its timeouts are the eject threshold: a primary that
        hangs must not hold back the verdict on a replica for longer than that.
        """
        return self._get(
            "second_opinion",
            address,
            lambda: make_engine(
                self.settings,
                address,
                timeout_s=self.settings.replica_lag_eject_s,
                pool_size=max(len(self.settings.db_replicas), 1),
                max_overflow=0,
                **READ_ENGINE,
            ),
        )

    def probe(self, address: str) -> Engine:
        """One connection with short timeouts, for the topology's read_only checks."""
        return self._get(
            "probe",
            address,
            lambda: make_engine(
                self.settings,
                address,
                timeout_s=self.settings.db_connect_timeout,
                pool_size=1,
                max_overflow=0,
                **READ_ENGINE,
            ),
        )

    def nodes(self, primary: str) -> Nodes:
        """The writer engine of PRIMARY, and an autocommit read engine per member, by name."""
        readers = {PRIMARY: self.reader(primary)}
        for name, address in replica_members(self.settings, primary).items():
            readers[name] = self.reader(address)
        return Nodes(writer=self.writer(primary), readers=readers)


def replica_members(settings: Settings, primary: str) -> dict[str, str]:
    """Every member but PRIMARY, by the name it serves reads under -> host:port."""
    return {
        replica_name(index): address
        for index, address in enumerate(settings.members())
        if address != primary
    }


def find_primary(settings: Settings, engines: Engines | None = None) -> str:
    """The member that takes writes now, for processes outside the API (migrations, the
    operator's CLI, the heartbeat writer, the relays): the one writable member, or of several the
    one with the highest epoch (topology.py); else the configured primary (none writable: it is
    down or fenced, and writing there fails as it should)."""
    engines = engines or Engines(settings)
    found, _ = current_primary({address: engines.probe(address) for address in settings.members()})
    return found or settings.db_primary
