"""Which database node serves a unit of work, and why.

The decision is made once per unit of work, never per statement: SQLAlchemy's own docs warn
that routing statements of one transaction to different nodes is incoherent (a read after a
write in the same transaction could miss that write). So callers declare intent up front:

* ``writer()``: the primary, in one transaction, for anything that writes (and any read whose
  answer a write depends on, such as the row returned after an UPDATE). After the commit the
  unit of work holds the write's GTID, for read-your-writes tokens and cache invalidation.
* ``read(fetch, floor)``: plain reads, in autocommit (each read use case is one or two
  independent statements, so no snapshot is needed and no BEGIN/COMMIT round trips are paid),
  on a raw DBAPI connection from the node's pool: the read use cases are plain SQL, and
  SQLAlchemy's Connection layer measured as costly as the query itself (docs/benchmarks.md).
  In order of preference:

  1. an admitted replica (round robin; see lag.py for admission). With ``floor`` (a
     read-your-writes token, or a cache tombstone, as the application layer decided) only one that
     has applied that GTID: known from its last polled position, or confirmed with
     ``MASTER_GTID_WAIT`` for a few ms;
  2. the primary, through a bulkhead that caps concurrent fallback reads (``Saturated`` when full);
     with ``floor``, only once it shows it has that GTID (``holding``: a worker that has not yet
     followed a switchover calls a node the primary that is a replica by now);
  3. when the primary cannot be reached either: a reachable replica that was ejected for lag.
     Stale data beats no data for plain reads; a read with ``floor`` still needs the GTID.

  A read whose pooled connection had died runs again on a fresh one (connections.py); a node
  whose fresh connection breaks too is added to the caller's ``avoid`` and the error raised, for
  the caller's retry to go elsewhere.

Every node has a circuit breaker: a node whose breaker is open is skipped for reads, and writes
fail at once (``BreakerOpen``) instead of each waiting for a connect timeout. Only failures of
the node itself (unreachable, connection lost) count against it, never a request's own errors.

Which member is the primary can change (a failover, topology.py): the router then switches to a
new ``View`` (engines by name, and a replica monitor for the new set of replicas) in one
assignment, so a unit of work that started on the old view finishes on it. A write refused because
its node is read-only waits (up to ``TOPOLOGY_WAIT_S``) for the topology to name another primary
and is then run again there by the caller's retry: the refused statement committed nothing.

The router knows nothing of HTTP or of the cache: it reports the node it chose.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, text

from app.db.connections import NoConnection, on_live_connection
from app.db.errors import DRIVER_ERRORS, READ_ONLY, is_code, is_node_failure
from app.db.monitor import ReplicaMonitor
from app.db.probes import applied_within
from app.db.sql import fetch_one
from app.errors import BreakerOpen, NoNodeAvailable
from app.gtid import covers
from app.resilience import deadline
from app.resilience.breaker import CircuitBreaker
from app.resilience.bulkhead import Bulkhead

if TYPE_CHECKING:
    from app.db.topology import Topology

PRIMARY = "primary"
LAST_GTID = text("SELECT @@last_gtid")
CURRENT_POSITION = "SELECT @@gtid_current_pos AS position"
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class UnitOfWork:
    """A write's open SQLAlchemy Connection, its node, and (once committed) the write's GTID."""

    node: str
    conn: Any
    gtid: str = ""


@dataclass(frozen=True)
class Nodes:
    """The engines of every node: one transactional engine for writes, autocommit ones for reads."""

    writer: Engine
    readers: dict[str, Engine]


@dataclass(frozen=True)
class View:
    """What the router routes over while one member is the primary (at address PRIMARY)."""

    nodes: Nodes
    monitor: ReplicaMonitor
    primary: str = ""

    @property
    def replica_names(self) -> list[str]:
        return [name for name in self.nodes.readers if name != PRIMARY]


class Router:
    """Routes units of work to the primary or to one of the replicas."""

    def __init__(
        self,
        nodes: Nodes,
        monitor: ReplicaMonitor,
        bulkhead: Bulkhead,
        breakers: dict[str, CircuitBreaker],
        ryw_wait_s: float,
        *,
        primary: str = "",
        topology_wait_s: float = 0.0,
    ) -> None:
        """NODES.readers and BREAKERS hold 'primary' and each replica by name; PRIMARY is the
        address of the primary's member."""
        self.view = View(nodes, monitor, primary)
        self.bulkhead, self.breakers, self.ryw_wait_s = bulkhead, breakers, ryw_wait_s
        self.topology: Topology | None = None  # set by the wiring when the primary may move
        self.topology_wait_s = topology_wait_s
        # Each worker starts at a random replica, so the first reads of many fresh workers
        # do not all land on replica-1.
        self._turn = itertools.count(random.randrange(max(len(self.replica_names), 1)))

    @property
    def nodes(self) -> Nodes:
        return self.view.nodes

    @property
    def monitor(self) -> ReplicaMonitor:
        return self.view.monitor

    @property
    def replica_names(self) -> list[str]:
        return self.view.replica_names

    def switch(self, primary: str, nodes: Nodes, monitor: ReplicaMonitor) -> None:
        """Route over member PRIMARY as the primary from now on; the old view's monitor stops,
        and the primary's breaker forgets the outcomes of the node that held the role."""
        old, self.view = self.view, View(nodes, monitor, primary)
        old.monitor.stop()
        self.breakers[PRIMARY].reset()

    def suspect_primary(self) -> None:
        """Something suggests the primary moved: have the topology look now."""
        if self.topology is not None:
            self.topology.wake()

    @contextmanager
    def writer(self) -> Iterator[UnitOfWork]:
        """A transaction on the primary, committed when the block ends without error."""
        view, breaker = self.view, self.breakers[PRIMARY]
        if not breaker.allow():
            self.suspect_primary()
            raise BreakerOpen(PRIMARY, breaker.policy.open_s)
        started, node_failed, own_error = time.monotonic(), False, False
        try:
            with view.nodes.writer.connect() as conn:
                uow = UnitOfWork(PRIMARY, conn)
                with conn.begin():
                    yield uow
                uow.gtid = conn.execute(LAST_GTID).scalar() or ""
        except Exception as error:
            node_failed = is_node_failure(error)
            own_error = not node_failed
            if node_failed:
                self.suspect_primary()
            elif is_code(error, READ_ONLY) and self.topology is not None:
                # Fenced: a switchover or failover is under way. Wait for the new primary (within
                # the write's deadline); the caller's retry runs the unit of work there.
                left = deadline.left()
                wait_s = self.topology_wait_s if left is None else min(self.topology_wait_s, left)
                self.topology.wait_for_move(view.primary, max(0.0, wait_s))
            raise
        finally:
            # The request's own error (bad input, a lock wait timeout, a deadlock) says nothing
            # about the node, however long it took: a row lock held elsewhere is not a slow node.
            breaker.record(not node_failed, 0.0 if own_error else time.monotonic() - started)

    def read(
        self,
        fetch: Callable[[Any], T],
        floor: str | None = None,
        *,
        avoid: set[str] | None = None,
        prefer: str | None = None,
        kind: str = "read",
    ) -> tuple[str, T]:
        """(node, FETCH's result) from the best node available now (see the module docstring).

        Never a node in AVOID; a node that fails this read is added to it. PREFER names a node to
        try first (the primary, for data that must be current). KIND labels retries in metrics.
        """
        avoid = set() if avoid is None else avoid
        view = self.view
        for name, release in self._candidates(view, floor, avoid, prefer):
            breaker, started = self.breakers[name], time.monotonic()
            node_failed = False
            work = fetch if name != PRIMARY or not floor else holding(floor, fetch)
            try:
                return name, on_live_connection(view.nodes.readers[name], work, kind)
            except NotHeld:
                # The node this view calls the primary lacks the client's write: the primary
                # moved (a switchover) and this worker has not followed yet. Never answer from it.
                log.warning("primary lacks a read's floor", extra={"floor": floor})
                self.suspect_primary()
            except NoConnection as error:
                node_failed = True
                log.warning("node unavailable for reads", extra={"node": name, "error": str(error)})
            except DRIVER_ERRORS:
                node_failed = True  # broke on a fresh connection too: the caller retries elsewhere
                avoid.add(name)
                raise
            finally:
                release()
                breaker.record(not node_failed, time.monotonic() - started)
        raise NoNodeAvailable("no database node can serve this read")

    def replica_order(
        self, avoid: frozenset[str] = frozenset(), view: View | None = None
    ) -> list[str]:
        """Admitted replicas, starting from the next in turn."""
        monitor = (view or self.view).monitor
        admitted = [name for name in monitor.admitted() if name not in avoid]
        if not admitted:
            return []
        start = next(self._turn) % len(admitted)
        return admitted[start:] + admitted[:start]

    def _candidates(
        self, view: View, floor: str | None, avoid: set[str], prefer: str | None
    ) -> Iterator[tuple[str, Callable[[], None]]]:
        """Nodes to try in order, each with the release of the bulkhead slot it holds."""
        tried = set(avoid)
        if prefer and prefer not in tried:
            tried.add(prefer)
            if self._usable(view, prefer, floor):
                yield prefer, _nothing
        for name in self.replica_order(frozenset(tried), view):
            tried.add(name)
            if self._usable(view, name, floor):
                yield name, _nothing
        if PRIMARY not in tried:
            tried.add(PRIMARY)
            if self.breakers[PRIMARY].allow():
                # With no replica configured the primary is the read node, not a fallback: no cap.
                yield PRIMARY, self.bulkhead.acquire() if view.replica_names else _nothing
        for name in set(view.monitor.ejected_but_reachable()) - tried:
            if self._usable(view, name, floor):
                log.warning("primary down: reading from ejected replica", extra={"node": name})
                yield name, _nothing

    def _usable(self, view: View, name: str, floor: str | None) -> bool:
        """May replica NAME serve a read that must see FLOOR: its breaker allows, and it has
        applied FLOOR (polled, else confirmed with a short wait)? A wait it could not answer
        counts against it."""
        breaker = self.breakers[name]
        if not breaker.allow():
            return False
        if name == PRIMARY or not floor or covers(view.monitor.states[name].position, floor):
            return True
        started = time.monotonic()
        applied = applied_within(view.nodes.readers[name], floor, self.ryw_wait_s)
        breaker.record(applied is not None, time.monotonic() - started)
        return bool(applied)


class NotHeld(Exception):
    """The node lacks the GTID a read must see."""


def holding(floor: str, fetch: Callable[[Any], T]) -> Callable[[Any], T]:
    """FETCH on a connection to the node a view calls the primary, once it proves it has FLOOR.

    The primary holds every acknowledged write, so a read with a floor needs no wait there; but a
    worker's view lags a switchover by up to a topology check, and for that moment the node it
    calls the primary is a replica of the new one. One short query tells them apart.
    """

    def checked(conn: Any) -> T:
        row = fetch_one(conn, CURRENT_POSITION, ())
        if row is None or not covers(str(row["position"] or ""), floor):
            raise NotHeld(floor)
        return fetch(conn)

    return checked


def _nothing() -> None:
    """Release function of a read that holds no bulkhead slot."""
