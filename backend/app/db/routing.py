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

Every node has a circuit breaker: a node whose breaker is open is skipped for reads, and writes
fail at once (``BreakerOpen``) instead of each waiting for a connect timeout. Only failures of
the node itself (unreachable, connection lost) count against it, never a request's own errors.

The router knows nothing of HTTP: it reports the node it chose through ``UnitOfWork.node``.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymysql
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app.db.consistency import covers
from app.db.errors import is_node_failure
from app.db.replicas import ReplicaMonitor
from app.db.sql import fetch_one
from app.resilience.breaker import BreakerOpen, CircuitBreaker
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
        self,
        nodes: Nodes,
        monitor: ReplicaMonitor,
        bulkhead: Bulkhead,
        breakers: dict[str, CircuitBreaker],
        ryw_wait_s: float,
    ) -> None:
        """NODES.readers and BREAKERS hold 'primary' and each replica by name."""
        self.nodes, self.monitor, self.bulkhead = nodes, monitor, bulkhead
        self.breakers, self.ryw_wait_s = breakers, ryw_wait_s
        self.replica_names = [name for name in nodes.readers if name != PRIMARY]
        # Each worker starts at a random replica, so the first reads of many fresh workers
        # do not all land on replica-1.
        self._turn = itertools.count(random.randrange(max(len(self.replica_names), 1)))

    @contextmanager
    def writer(self) -> Iterator[UnitOfWork]:
        """A transaction on the primary, committed when the block ends without error."""
        breaker = self.breakers[PRIMARY]
        if not breaker.allow():
            raise BreakerOpen(PRIMARY)
        started, node_failed, own_error = time.monotonic(), False, False
        try:
            with self.nodes.writer.connect() as conn:
                uow = UnitOfWork(PRIMARY, conn)
                with conn.begin():
                    yield uow
                uow.gtid = conn.execute(LAST_GTID).scalar() or ""
        except Exception as error:
            node_failed = is_node_failure(error)
            own_error = not node_failed
            raise
        finally:
            # The request's own error (bad input, a lock wait timeout, a deadlock) says nothing
            # about the node, however long it took: a row lock held elsewhere is not a slow node.
            breaker.record(not node_failed, 0.0 if own_error else time.monotonic() - started)

    @contextmanager
    def reader(
        self,
        min_gtid: str | None = None,
        avoid: frozenset[str] = frozenset(),
        prefer: str | None = None,
    ) -> Iterator[UnitOfWork]:
        """A read on the best node available now (see the module docstring), never one in AVOID.

        PREFER names a node to try first (the primary, for data that must be current).
        """
        node, conn, release = self._open_for_read(min_gtid, avoid, prefer)
        started, node_failed = time.monotonic(), False
        try:
            yield UnitOfWork(node, conn)
        except DBAPI_ERRORS:
            # A broken connection must not go back to the pool, and the pooled ones to the same
            # server are suspect too (it went away, or restarted): start that pool afresh.
            node_failed = True
            conn.invalidate()
            self.nodes.readers[node].dispose()
            raise
        finally:
            conn.close()  # back to the pool (a no-op after invalidate)
            release()
            self.breakers[node].record(not node_failed, time.monotonic() - started)

    def replica_order(self, avoid: frozenset[str] = frozenset()) -> list[str]:
        """Admitted replicas, starting from the next in turn."""
        admitted = [name for name in self.monitor.admitted() if name not in avoid]
        if not admitted:
            return []
        start = next(self._turn) % len(admitted)
        return admitted[start:] + admitted[:start]

    def _open_for_read(
        self, min_gtid: str | None, avoid: frozenset[str], prefer: str | None
    ) -> tuple[str, Any, Callable[[], None]]:
        if prefer and prefer not in avoid:
            if conn := self._connect(prefer, min_gtid):
                return prefer, conn, _nothing
            avoid |= {prefer}  # tried already
        for name in self.replica_order(avoid):
            if conn := self._connect(name, min_gtid):
                return name, conn, _nothing
        if PRIMARY not in avoid:
            # With no replica configured the primary is the read node, not a fallback: no cap.
            release = self.bulkhead.acquire() if self.replica_names else _nothing
            if conn := self._connect(PRIMARY, None):
                return PRIMARY, conn, release
            release()
        for name in set(self.monitor.ejected_but_reachable()) - avoid:
            if conn := self._connect(name, min_gtid):
                log.warning("primary down: reading from ejected replica", extra={"node": name})
                return name, conn, _nothing
        raise NoNodeAvailable("no database node can serve this read")

    def _connect(self, name: str, min_gtid: str | None) -> Any | None:
        """A connection to node NAME if its breaker allows, it answers and has applied MIN_GTID.

        Every call the breaker let through is recorded here when it yields no connection, and
        by reader() when it does.
        """
        breaker = self.breakers[name]
        if not breaker.allow():
            return None
        started = time.monotonic()
        try:
            conn = self.nodes.readers[name].raw_connection()
        except (DBAPIError, *DBAPI_ERRORS) as error:
            breaker.record(False, time.monotonic() - started)
            log.warning("node unavailable for reads", extra={"node": name, "error": str(error)})
            return None
        if name == PRIMARY or self._has_applied(name, conn, min_gtid):
            return conn
        breaker.record(True, time.monotonic() - started)  # it answered; it is only behind
        return None

    def _has_applied(self, name: str, conn: Any, min_gtid: str | None) -> bool:
        """Has replica NAME applied MIN_GTID (polled, else a short wait)? Closes CONN if not."""
        if not min_gtid or covers(self.monitor.states[name].position, min_gtid):
            return True
        try:
            row = fetch_one(conn, GTID_WAIT, (min_gtid, self.ryw_wait_s))
        except DBAPI_ERRORS:
            conn.invalidate()
            row = None
        if row is None or next(iter(row.values())) != 0:
            conn.close()
            return False
        return True


def _nothing() -> None:
    """Release function of a read that holds no bulkhead slot."""
