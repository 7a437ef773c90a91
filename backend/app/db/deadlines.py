"""Writer round trips bounded by the unit of work's deadline (app/resilience/deadline.py).

PyMySQL bounds each socket read and write of a connection by its timeouts. Before every use of a
writer connection (connecting, the pool's ping, each statement, the COMMIT) they are set to the
time left, at most the engine's own: a frozen primary (its port open, nothing answered) costs a
write its deadline, then a 503 with Retry-After, never nginx's timeout. Without a deadline (a queue
worker's writes) the engine's own timeouts stay.

A round trip its deadline cut is a connection lost: PyMySQL closes it and raises 2013, which the
router counts against the node (its breaker) and the unit of work does not retry (its COMMIT may
have been applied; an Idempotency-Key makes the client's own retry safe). A deadline that has
passed before a round trip starts raises DeadlinePassed: nothing of that round trip was sent.
"""

from __future__ import annotations

from typing import Any

import pymysql
from sqlalchemy import Engine, event

from app.db.errors import DEADLINE_PASSED
from app.resilience import deadline

# Less time left than this: give up before sending anything (PyMySQL refuses a zero timeout).
MIN_ROUND_TRIP_S = 0.005


class DeadlinePassed(pymysql.err.OperationalError):
    """The unit of work's deadline passed before a round trip could start."""


def round_trip_s(default_s: float) -> float:
    """The next round trip's timeout: the time left, at most DEFAULT_S (DEFAULT_S without a
    deadline); raises DeadlinePassed when too little is left."""
    remaining = deadline.left()
    if remaining is None:
        return default_s
    if remaining < MIN_ROUND_TRIP_S:
        raise DeadlinePassed(DEADLINE_PASSED, "the write's deadline passed")
    return min(default_s, remaining)


def bound(raw: Any, default_s: float) -> None:
    """Set the PyMySQL connection RAW's timeouts for its next round trip (it reads them before
    each socket read and write)."""
    raw._read_timeout = raw._write_timeout = round_trip_s(default_s)


def bounded(engine: Engine, default_s: float) -> Engine:
    """ENGINE, each of its round trips bounded by the deadline and DEFAULT_S."""

    def connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        timeout = round_trip_s(default_s)  # cparams is this connection's own copy
        cparams["connect_timeout"] = min(cparams.get("connect_timeout", timeout), timeout)
        cparams["read_timeout"] = cparams["write_timeout"] = timeout

    def before_execute(conn: Any, cursor: Any, *args: Any) -> None:
        bound(cursor.connection, default_s)

    def before_commit(conn: Any) -> None:
        bound(conn.connection.dbapi_connection, default_s)

    # The pool pings a connection before handing it out, and SQLAlchemy has no event before the
    # ping: this engine's dialect (its own instance) bounds it first.
    ping = engine.dialect.do_ping

    def bounded_ping(raw: Any) -> bool:
        bound(raw, default_s)
        return ping(raw)

    engine.dialect.do_ping = bounded_ping  # type: ignore[method-assign, assignment]
    event.listen(engine, "do_connect", connect)
    event.listen(engine, "before_cursor_execute", before_execute)
    event.listen(engine, "commit", before_commit)
    return engine
