"""Work on a pooled connection that may have died since it was last used: the one place that
retries on a fresh connection.

Pooled connections die together when their server restarts or kills them, while the server may
be fine again. Reads, replica polls and GTID waits therefore take a pooled connection without a
ping first (a ping costs a round trip on every use), and when the work meets a dead connection
the node's pool is reset and the work runs once more on a fresh one. A node that cannot be
connected to at all raises ``NoConnection``; one whose fresh connection breaks too raises the
driver's error, for the caller to treat as a failure of the node. A round trip that timed out
is not retried on the same node: a frozen server (its port open, no code of its running) would
take a fresh connection's handshake and the deadline again; the caller goes elsewhere at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine

from app import metrics
from app.db.errors import DRIVER_ERRORS, timed_out
from app.db.sql import fetch_one

T = TypeVar("T")


class NoConnection(Exception):
    """No connection to the node could be made (the cause says why)."""


def on_live_connection(engine: Engine, work: Callable[[Any], T], kind: str | None = None) -> T:
    """WORK's result on a pooled connection of ENGINE, or on a fresh one when that had died.

    KIND, when given, counts the second attempt in ``db_retries_total``. Raises NoConnection when
    connecting fails, and what WORK raised otherwise (a connection that broke goes away; one
    whose work failed otherwise, say with a row not found, goes back to the pool).
    """
    for fresh in (False, True):
        try:
            conn = engine.raw_connection()
        except Exception as error:  # any failure to connect
            raise NoConnection(error) from error
        try:
            return work(conn)
        except DRIVER_ERRORS as error:
            conn.invalidate()
            if fresh or timed_out(error):
                raise
            engine.dispose()  # the other pooled connections died with the same server
            if kind is not None:
                metrics.RETRIES.labels(kind, "retried").inc()
        finally:
            conn.close()  # back to the pool (a no-op after invalidate)
    raise AssertionError("not reached: the fresh attempt returns or raises")


def query_once(engine: Engine, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
    """The first row of SQL on a live connection of ENGINE; None when the node cannot answer."""
    try:
        return on_live_connection(engine, lambda conn: fetch_one(conn, sql, params))
    except Exception:  # any failure: no answer
        return None
