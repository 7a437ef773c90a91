"""What a node says when asked: a replica's replication state and lag, the primary's position
and heartbeat, and how long a replica takes to apply a position. Each probe is one query on a
live connection (see connections.py) and never raises: a node that cannot answer says so.

A poll is one query: whether both replication threads run, whether the node is read-only (one that
is not has been promoted), the GTID position, and the age of the heartbeat row that
``app.heartbeat`` rewrites on the primary a few times a second: that age is the replica's lag with
sub-second resolution (``Seconds_Behind_Master`` counts whole seconds and is NULL when replication
is broken).
"""

from __future__ import annotations

import time
from typing import Any

import pymysql
from sqlalchemy import Engine

from app.db.connections import NoConnection, on_live_connection, query_once
from app.db.errors import DRIVER_ERRORS
from app.db.lag import Observation, PrimaryView
from app.db.sql import fetch_one

# One round trip per poll: the GTID position, the heartbeat's age (the lag), and whether both
# replication threads run (MariaDB's Slave_running is ON exactly when SHOW REPLICA STATUS shows
# Slave_IO_Running and Slave_SQL_Running as Yes). SHOW REPLICA STATUS itself returns some 60
# columns that cost the client ~0.6 ms of parsing, so it runs only to explain a stop.
POLL_SQL = (
    "SELECT @@gtid_slave_pos AS position, @@read_only AS read_only,"
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


def observe(engine: Engine) -> Observation:
    """Poll one replica: replication threads, heartbeat lag and GTID position."""
    try:
        return on_live_connection(engine, read_state)
    except NoConnection as error:
        return unreachable(error.__cause__ or error)
    except DRIVER_ERRORS as error:
        return unreachable(error)
    except Exception as error:  # e.g. no heartbeat table: the node cannot be vouched for
        return Observation(reachable=True, problem=f"cannot poll: {type(error).__name__}")


def unreachable(error: BaseException) -> Observation:
    """The replica could not be asked."""
    return Observation(reachable=False, problem=f"unreachable: {type(error).__name__}")


def read_state(conn: Any) -> Observation:
    """One poll's query on CONN, and SHOW REPLICA STATUS when replication is not running."""
    row = fetch_one(conn, POLL_SQL, ())
    if row is None:
        raise pymysql.err.InterfaceError("the poll returned no row")
    position, heartbeat_age = row["position"], row["heartbeat_age"]
    writable = not int(row["read_only"])
    if row["running"] != "ON":
        return stopped(conn, position, writable)
    if heartbeat_age is None:  # no heartbeat replicated yet: lag unknown
        return Observation(reachable=True, replicating=True, position=position, writable=writable)
    lag = max(float(heartbeat_age), 0.0)
    return Observation(
        reachable=True, replicating=True, lag_s=lag, position=position, writable=writable
    )


def stopped(conn: Any, position: str, writable: bool = False) -> Observation:
    """Why replication is not running, from SHOW REPLICA STATUS (only now worth its cost)."""
    status = fetch_one(conn, STATUS_SQL, ())
    if status is None:
        problem = "promoted: takes writes" if writable else "not a replica"
        return Observation(reachable=True, position=position, problem=problem, writable=writable)
    io, sql = status["Slave_IO_Running"], status["Slave_SQL_Running"]
    problem = f"replication stopped (io={io}, sql={sql})"
    return Observation(reachable=True, position=position, problem=problem, writable=writable)


def ask_primary(engine: Engine) -> PrimaryView | None:
    """The primary's GTID position and heartbeat age; None when it cannot be asked."""
    row = query_once(engine, PRIMARY_SQL, ())
    if row is None:
        return None
    age = row["heartbeat_age"]
    return PrimaryView(row["position"], None if age is None else max(float(age), 0.0))


def applied_within(engine: Engine, position: str, timeout_s: float) -> bool | None:
    """Has replica ENGINE applied POSITION, waiting up to TIMEOUT_S? None when it cannot answer.

    The one GTID wait: reads with a read-your-writes floor ask it for a few ms (routing.py), the
    monitor for up to its eject threshold (time_to_apply).
    """
    row = query_once(engine, WAIT_SQL, (position, timeout_s))
    return None if row is None else next(iter(row.values())) == 0


def time_to_apply(engine: Engine, position: str, timeout_s: float) -> float | None:
    """Seconds replica ENGINE takes to apply POSITION; above TIMEOUT_S when it did not in time.

    None when the replica cannot be asked.
    """
    started = time.monotonic()
    applied = applied_within(engine, position, timeout_s)
    waited = time.monotonic() - started
    if applied is None:
        return None
    return waited if applied else max(waited, timeout_s + 0.001)
