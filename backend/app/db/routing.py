"""Which database node serves a unit of work, and why.

The decision is made once per unit of work, never per statement: SQLAlchemy's own docs warn
that routing statements of one transaction to different nodes is incoherent (a read after a
write in the same transaction could miss that write). So callers declare intent up front:

* ``writer()``: the primary, in one transaction, for anything that writes (and any read whose
  answer a write depends on, such as the row returned after an UPDATE). After the commit the
  unit of work holds the write's GTID, for read-your-writes tokens and cache invalidation.
* ``reader(min_gtid)``: plain reads, in autocommit (each read use case is one or two
  independent statements, so no snapshot is needed and no BEGIN/COMMIT round trips are paid),
  on a raw DBAPI connection from the node's pool: the read use cases are plain SQL, and
  SQLAlchemy's Connection layer measured as costly as the query itself (docs/benchmarks.md).
  In order of preference:

  1. an admitted replica (round robin; see replicas.py for admission). With ``min_gtid`` (a
     read-your-writes token, or a cache tombstone) only one that has applied that GTID: known
     from its last polled position, or confirmed with ``MASTER_GTID_WAIT`` for a few ms;
  2. the primary, through a bulkhead that caps concurrent fallback reads (``Saturated`` when full);
  3. when the primary cannot be reached either: a reachable replica that was ejected for lag.
     Stale data beats no data for plain reads; a read with ``min_gtid`` still needs the GTID.

The router knows nothing of HTTP: it reports the node it chose through ``UnitOfWork.node``.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymysql
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app.db.consistency import covers
from app.db.replicas import ReplicaMonitor
from app.db.sql import fetch_one
from app.resilience.bulkhead import Bulkhead

PRIMARY = "primary"
LAST_GTID = text("SELECT @@last_gtid")
GTID_WAIT = "SELECT MASTER_GTID_WAIT(%s, %s)"
# Errors of a DBAPI connection itself (PyMySQL's), raised by reads on raw connections.
DBAPI_ERRORS = (pymysql.err.OperationalError, pymysql.err.InterfaceError)
log = logging.getLogger(__name__)


class NoNodeAvailable(Exception):
    """Neither a replica nor the primary could be opened for a read."""


@dataclass
class UnitOfWork:
    """An open connection, the node it talks to, and (after a write commits) the write's GTID.

    A writer's ``conn`` is a SQLAlchemy Connection; a reader's is a pooled DBAPI connection.
    """

    node: str
    conn: Any
    gtid: str = ""


@dataclass(frozen=True)
class Nodes:
    """The engines of every node: one transactional engine for writes, autocommit ones for reads."""

    writer: Engine
    readers: dict[str, Engine]


class Router:
    """Routes units of work to the primary or to one of the replicas."""

    def __init__(
        self, nodes: Nodes, monitor: ReplicaMonitor, bulkhead: Bulkhead, ryw_wait_s: float
    ) -> None:
        """NODES.readers holds 'primary' and each replica by name."""
        self.nodes, self.monitor, self.bulkhead, self.ryw_wait_s = (
            nodes,
            monitor,
            bulkhead,
            ryw_wait_s,
        )
        self.replica_names = [name for name in nodes.readers if name != PRIMARY]
        # Each worker starts at a random replica, so the first reads of many fresh workers
        # do not all land on replica-1.
        self._turn = itertools.count(random.randrange(max(len(self.replica_names), 1)))

    @contextmanager
    def writer(self) -> Iterator[UnitOfWork]:
        """A transaction on the primary, committed when the block ends without error."""
        with self.nodes.writer.connect() as conn:
            uow = UnitOfWork(PRIMARY, conn)
            with conn.begin():
                yield uow
            uow.gtid = conn.execute(LAST_GTID).scalar() or ""

    @contextmanager
    def reader(
        self, min_gtid: str | None = None, avoid: frozenset[str] = frozenset()
    ) -> Iterator[UnitOfWork]:
        """A read on the best node available now (see the module docstring), never one in AVOID."""
        node, conn, release = self._open_for_read(min_gtid, avoid)
        try:
            yield UnitOfWork(node, conn)
        except DBAPI_ERRORS:
            # A broken connection must not go back to the pool, and the pooled ones to the same
            # server are suspect too (it went away, or restarted): start that pool afresh.
            conn.invalidate()
            self.nodes.readers[node].dispose()
            raise
        finally:
            conn.close()  # back to the pool (a no-op after invalidate)
            release()

    def replica_order(self, avoid: frozenset[str] = frozenset()) -> list[str]:
        """Admitted replicas, starting from the next in turn."""
        admitted = [name for name in self.monitor.admitted() if name not in avoid]
        if not admitted:
            return []
        start = next(self._turn) % len(admitted)
        return admitted[start:] + admitted[:start]

    def _open_for_read(
        self, min_gtid: str | None, avoid: frozenset[str]
    ) -> tuple[str, Any, Callable[[], None]]:
        for name in self.replica_order(avoid):
            if conn := self._connect_replica(name, min_gtid):
                return name, conn, _nothing
        if PRIMARY not in avoid:
            # With no replica configured the primary is the read node, not a fallback: no cap.
            release = self.bulkhead.acquire() if self.replica_names else _nothing
            try:
                return PRIMARY, self.nodes.readers[PRIMARY].raw_connection(), release
            except (DBAPIError, *DBAPI_ERRORS):
                release()
        for name in set(self.monitor.ejected_but_reachable()) - avoid:
            if conn := self._connect_replica(name, min_gtid):
                log.warning("primary down: reading from ejected replica", extra={"node": name})
                return name, conn, _nothing
        raise NoNodeAvailable("no database node can serve this read")

    def _connect_replica(self, name: str, min_gtid: str | None) -> Any | None:
        """A connection to replica NAME, if it answers and has applied MIN_GTID."""
        try:
            conn = self.nodes.readers[name].raw_connection()
        except (DBAPIError, *DBAPI_ERRORS) as error:
            log.warning("replica unavailable for reads", extra={"node": name, "error": str(error)})
            return None
        if min_gtid and not covers(self.monitor.states[name].position, min_gtid):
            try:
                row = fetch_one(conn, GTID_WAIT, (min_gtid, self.ryw_wait_s))
            except DBAPI_ERRORS:
                conn.invalidate()
                row = None
            if row is None or next(iter(row.values())) != 0:
                conn.close()
                return None
        return conn


def _nothing() -> None:
    """Release function of a read that holds no bulkhead slot."""
