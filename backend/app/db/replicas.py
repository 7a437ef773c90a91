"""Replica health and lag tracking, with hysteresis between ejecting and re-admitting a replica.

Each API worker polls every replica in a thread of its own (one per replica, so a hung replica
cannot delay news about the others). A poll is one query: whether both replication threads run, the
GTID position, and the age of the heartbeat row that ``app.heartbeat`` rewrites on the primary a
few times a second: that age is the replica's lag with sub-second resolution
(``Seconds_Behind_Master`` counts whole seconds and is NULL when replication is broken).

A replica is ejected at once when it is unreachable, a replication thread is not running, its
lag is unknown (no heartbeat row yet), or its lag exceeds ``eject_above_s``. It is re-admitted only
after its lag has stayed below the lower ``readmit_below_s`` for ``readmit_after_s``, so a replica
hovering around the threshold does not flap. Ejection only changes where *new* reads go: queries
already running on the replica finish normally.

The heartbeat measures lag only while its writer runs. When a replica's copy of the row looks too
old, the monitor asks the primary before ejecting: if the primary's own copy is about as old, the
writer has stopped (a crash, a restart) and says nothing about the replica, so the lag is measured
directly instead, as the time the replica takes to apply the primary's current GTID position
(waiting no longer than the eject threshold). A stopped writer thus cannot eject replicas that
are keeping up, and a replica that is behind is still ejected.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import pymysql
from sqlalchemy import Engine

from app import metrics
from app.db.consistency import covers
from app.db.sql import fetch_one

log = logging.getLogger(__name__)
T = TypeVar("T")

# One round trip per poll: the GTID position, the heartbeat's age (the lag), and whether both
# replication threads run (MariaDB's Slave_running is ON exactly when SHOW REPLICA STATUS shows
# Slave_IO_Running and Slave_SQL_Running as Yes). SHOW REPLICA STATUS itself returns some 60
# columns that cost the client ~0.6 ms of parsing, so it runs only to explain a stop.
POLL_SQL = (
    "SELECT @@gtid_slave_pos AS position,"
    " (SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) / 1e6 FROM heartbeat WHERE id = 1)"
    " AS heartbeat_age,"
    " (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
    " WHERE VARIABLE_NAME = 'SLAVE_RUNNING') AS running"
)
STATUS_SQL = "SHOW REPLICA STATUS"
# The primary's side of a second opinion: its GTID position and the age of its own heartbeat row.
PRIMARY_SQL = (
    "SELECT @@gtid_binlog_pos AS position,"
    " (SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) / 1e6 FROM heartbeat WHERE id = 1)"
    " AS heartbeat_age"
)
# 0 once the replica has applied the position, -1 when the timeout (seconds) passed first.
WAIT_SQL = "SELECT MASTER_GTID_WAIT(%s, %s) AS reached"
# Errors of a connection itself (PyMySQL's): the pooled connection died, or the server is gone.
CONNECTION_ERRORS = (pymysql.err.OperationalError, pymysql.err.InterfaceError)


@dataclass(frozen=True)
class LagPolicy:
    """Thresholds of the hysteresis, in seconds."""

    eject_above_s: float = 1.0
    readmit_below_s: float = 0.5
    readmit_after_s: float = 2.0


@dataclass(frozen=True)
class Observation:
    """What one poll of a replica found."""

    reachable: bool
    replicating: bool = False
    lag_s: float | None = None
    position: str = ""
    problem: str = ""


@dataclass(frozen=True)
class ReplicaState:
    """What the router knows about one replica."""

    name: str
    admitted: bool = True
    reachable: bool = True
    lag_s: float | None = None
    position: str = ""
    reason: str = "not polled yet"
    calm_since: float | None = None


def next_state(
    state: ReplicaState, seen: Observation, policy: LagPolicy, now: float
) -> ReplicaState:
    """Apply one observation to a replica's state (pure: the policy in one place)."""
    base = replace(state, reachable=seen.reachable, lag_s=seen.lag_s, position=seen.position)
    if not seen.reachable or not seen.replicating or seen.lag_s is None:
        return replace(base, admitted=False, calm_since=None, reason=seen.problem or "no lag known")
    if seen.lag_s > policy.eject_above_s:
        return replace(base, admitted=False, calm_since=None, reason=f"lag {seen.lag_s:.2f}s")
    if state.admitted:
        return replace(base, reason="ok")
    if seen.lag_s >= policy.readmit_below_s:
        return replace(base, calm_since=None, reason=f"recovering, lag {seen.lag_s:.2f}s")
    calm_since = state.calm_since if state.calm_since is not None else now
    if now - calm_since >= policy.readmit_after_s:
        return replace(base, admitted=True, calm_since=None, reason="ok")
    return replace(base, calm_since=calm_since, reason="recovering: lag low, waiting")


class NoConnection(Exception):
    """No connection to the node could be made (the cause says why)."""


def on_live_connection(engine: Engine, work: Callable[[Any], T]) -> T:
    """WORK's result on a pooled connection of ENGINE, taken without a ping first.

    When the server closed that connection meanwhile (a restart, a KILL), the pool is reset and
    WORK runs once more on a fresh one: a connection that merely went stale is no failure of the
    node. Raises NoConnection when connecting fails, and what WORK raised otherwise.
    """
    for attempt in ("pooled", "fresh"):
        try:
            conn = engine.raw_connection()
        except Exception as error:  # any failure to connect
            raise NoConnection(error) from error
        try:
            return work(conn)
        except CONNECTION_ERRORS:
            conn.invalidate()
            if attempt == "fresh":
                raise
            engine.dispose()  # the other pooled connections died with the same server
        except Exception:
            conn.invalidate()
            raise
        finally:
            conn.close()  # back to the pool (a no-op after invalidate)
    raise AssertionError("not reached: the second attempt returns or raises")


def observe(engine: Engine) -> Observation:
    """Poll one replica: replication threads, heartbeat lag and GTID position."""
    try:
        return on_live_connection(engine, read_state)
    except NoConnection as error:
        return unreachable(error.__cause__ or error)
    except CONNECTION_ERRORS as error:
        return unreachable(error)
    except Exception as error:  # e.g. no heartbeat table: the node cannot be vouched for
        return Observation(reachable=True, problem=f"cannot poll: {type(error).__name__}")


@dataclass(frozen=True)
class PrimaryView:
    """What the primary says in a second opinion."""

    position: str
    heartbeat_age: float | None


def heartbeat_silent(replica_age: float, primary: PrimaryView, policy: LagPolicy) -> bool:
    """Is a replica's old heartbeat copy (REPLICA_AGE seconds) no evidence of lag?

    True only when the writer is late itself (the primary's own copy is older than the re-admit
    bound) and the replica's copy is nearly as old: the replica may hold every beat there was.
    While the writer beats on time, or when the copies differ by more than the eject threshold,
    the replica's old copy is lag, as the poll said.
    """
    if primary.heartbeat_age is None:
        return False  # no heartbeat row on the primary: nothing to compare, the poll stands
    writer_late = primary.heartbeat_age > policy.readmit_below_s
    return writer_late and replica_age - primary.heartbeat_age <= policy.eject_above_s


def query_once(engine: Engine, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
    """The first row of SQL on a live connection of ENGINE; None when the node cannot answer."""
    try:
        return on_live_connection(engine, lambda conn: fetch_one(conn, sql, params))
    except Exception:  # any failure: no answer
        return None


def ask_primary(engine: Engine) -> PrimaryView | None:
    """The primary's GTID position and heartbeat age; None when it cannot be asked."""
    row = query_once(engine, PRIMARY_SQL, ())
    if row is None:
        return None
    age = row["heartbeat_age"]
    return PrimaryView(row["position"], None if age is None else max(float(age), 0.0))


def time_to_apply(engine: Engine, position: str, timeout_s: float) -> float | None:
    """Seconds replica ENGINE takes to apply POSITION; above TIMEOUT_S when it did not in time.

    None when the replica cannot be asked.
    """
    started = time.monotonic()
    row = query_once(engine, WAIT_SQL, (position, timeout_s))
    waited = time.monotonic() - started
    if row is None:
        return None
    if row["reached"] != 0:
        return max(waited, timeout_s + 0.001)  # not applied within the timeout: more than it
    return waited


def unreachable(error: BaseException) -> Observation:
    """The replica could not be asked."""
    return Observation(reachable=False, problem=f"unreachable: {type(error).__name__}")


def read_state(conn: Any) -> Observation:
    """One poll's query on CONN, and SHOW REPLICA STATUS when replication is not running."""
    row = fetch_one(conn, POLL_SQL, ())
    if row is None:
        raise pymysql.err.InterfaceError("the poll returned no row")
    position, heartbeat_age = row["position"], row["heartbeat_age"]
    if row["running"] != "ON":
        return stopped(conn, position)
    if heartbeat_age is None:  # no heartbeat replicated yet: lag unknown
        return Observation(reachable=True, replicating=True, position=position)
    lag = max(float(heartbeat_age), 0.0)
    return Observation(reachable=True, replicating=True, lag_s=lag, position=position)


def stopped(conn: Any, position: str) -> Observation:
    """Why replication is not running, from SHOW REPLICA STATUS (only now worth its cost)."""
    status = fetch_one(conn, STATUS_SQL, ())
    if status is None:
        return Observation(reachable=True, position=position, problem="not a replica")
    io, sql = status["Slave_IO_Running"], status["Slave_SQL_Running"]
    problem = f"replication stopped (io={io}, sql={sql})"
    return Observation(reachable=True, position=position, problem=problem)


class ReplicaMonitor:
    """Keeps a ReplicaState per replica up to date from background polls."""

    def __init__(
        self,
        engines: dict[str, Engine],
        policy: LagPolicy,
        interval_s: float,
        primary: Engine | None = None,
    ) -> None:
        """ENGINES are small, dedicated monitoring engines; INTERVAL_S 0 disables polling.

        PRIMARY, a small engine with short timeouts, gives second opinions on old heartbeats.
        """
        self.engines, self.policy, self.interval_s = engines, policy, interval_s
        self.primary = primary
        self.states = {name: ReplicaState(name) for name in engines}
        self._started = False
        self._lock = threading.Lock()
        self.writer_stalled = False  # the last second opinion found the heartbeat writer stopped

    def start(self) -> None:
        """Start one polling thread per replica (once; a no-op when polling is disabled)."""
        with self._lock:
            if self._started or self.interval_s <= 0:
                return
            self._started = True
        for name in self.engines:
            threading.Thread(
                target=self._run, args=(name,), name=f"monitor-{name}", daemon=True
            ).start()

    def poll(self, name: str) -> ReplicaState:
        """Poll one replica now and record the new state."""
        before = self.states[name]
        started = time.monotonic()
        seen = observe(self.engines[name])
        if seen.lag_s is not None and seen.lag_s > self.policy.eject_above_s:
            seen = self.second_opinion(name, seen)
        elif self.writer_stalled and seen.lag_s is not None:
            self.writer_stalled = False  # a fresh heartbeat copy: the writer beats again
            log.info("heartbeat writer beating again", extra={"replica": name})
        now = time.monotonic()
        after = next_state(before, seen, self.policy, now)
        self.states[name] = after
        metrics.REPLICA_POLL.labels(name).observe(now - started)
        if now - started > self.policy.eject_above_s / 2:
            # While a poll hangs, the router acts on what the previous one saw.
            log.warning("slow replica poll", extra={"replica": name, "seconds": now - started})
        metrics.REPLICA_ADMITTED.labels(name).set(int(after.admitted))
        if after.lag_s is not None:
            metrics.REPLICA_LAG.labels(name).set(after.lag_s)
        if after.admitted != before.admitted:
            log.warning(
                "replica %s",
                "admitted" if after.admitted else "ejected",
                extra={"replica": name, "reason": after.reason, "lag_s": after.lag_s},
            )
        return after

    def second_opinion(
        self, name: str, seen: Observation, replica: Engine | None = None
    ) -> Observation:
        """When SEEN has replica NAME's heartbeat too old: is it behind, or the writer stopped?

        The poll stands when the primary cannot be asked or its heartbeat is fresh; otherwise
        the lag becomes the time the replica takes to apply the primary's position (waited for on
        REPLICA, by default the monitor's own engine for NAME).
        """
        if self.primary is None or seen.lag_s is None or seen.lag_s <= self.policy.eject_above_s:
            return seen  # nothing to second-guess: no lag the heartbeat would eject for
        primary = ask_primary(self.primary)
        if primary is None or not heartbeat_silent(seen.lag_s, primary, self.policy):
            return seen
        stalled = (primary.heartbeat_age or 0.0) > self.policy.eject_above_s
        if stalled != self.writer_stalled:
            self.writer_stalled = stalled
            if stalled:
                log.warning(
                    "heartbeat writer stalled: replica lag measured by GTID instead",
                    extra={"heartbeat_age_s": primary.heartbeat_age},
                )
        if covers(seen.position, primary.position):
            return replace(seen, lag_s=0.0)  # it has applied everything the primary has
        engine = replica or self.engines[name]
        lag = time_to_apply(engine, primary.position, self.policy.eject_above_s)
        return seen if lag is None else replace(seen, lag_s=lag)

    def _run(self, name: str) -> None:
        while True:
            self.poll(name)
            slept = time.monotonic()
            time.sleep(self.interval_s)
            if (late := time.monotonic() - slept - self.interval_s) > self.policy.eject_above_s / 2:
                log.warning("replica poll late", extra={"replica": name, "seconds": late})

    def admitted(self) -> list[str]:
        """Replicas that may serve reads now."""
        return [name for name, state in self.states.items() if state.admitted]

    def ejected_but_reachable(self) -> list[str]:
        """Replicas out of rotation that still answer: a last resort when the primary is down."""
        return [n for n, s in self.states.items() if not s.admitted and s.reachable]
