"""MySQL error numbers, and what each means here: the node failed, worth trying again, or the
request's own fault. The one module that knows error codes and the driver's error types.

Errors come either from PyMySQL directly (reads run on raw DBAPI connections) or wrapped by
SQLAlchemy (writes); ``error_code`` looks through the wrapper. The codes are MariaDB's and
MySQL's client and server error numbers.
"""

from __future__ import annotations

import pymysql
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

CANNOT_CONNECT = 2003  # the connection was never made: nothing was sent
SERVER_GONE = 2006
LOST_DURING_QUERY = 2013
LOST_DURING_READ = 2055
TOO_MANY_CONNECTIONS = 1040
SERVER_SHUTDOWN = 1053
LOCK_WAIT_TIMEOUT = 1205
DEADLOCK = 1213
READ_ONLY = 1290  # ER_OPTION_PREVENTS_STATEMENT: the server runs with read_only
DUP_ENTRY = 1062
NO_REFERENCED_ROW = 1452  # a foreign key names a row that does not exist
# MariaDB's "statement time exceeded", raised here by the client itself (db/deadlines.py): a write's
# deadline passed before its next round trip. Not retried: the deadline is what a retry lacks.
DEADLINE_PASSED = 1969

# The node is unreachable or going away: counted by its circuit breaker.
NODE_FAILURES = frozenset(
    {
        CANNOT_CONNECT,
        SERVER_GONE,
        LOST_DURING_QUERY,
        LOST_DURING_READ,
        TOO_MANY_CONNECTIONS,
        SERVER_SHUTDOWN,
    }
)
# A write transaction that failed with these did not commit (the server rolled it back, or it
# never reached the server), so running the whole transaction again cannot write twice. A
# connection lost mid-transaction is not among them: the COMMIT may have been applied.
# READ_ONLY refuses the statement itself: the node was fenced (a switchover or failover), and the
# write runs again on the new primary.
SAFE_FOR_WRITES = frozenset(
    {CANNOT_CONNECT, TOO_MANY_CONNECTIONS, LOCK_WAIT_TIMEOUT, DEADLOCK, READ_ONLY}
)
# Reads change nothing, so every transient error may be retried.
SAFE_FOR_READS = NODE_FAILURES | {LOCK_WAIT_TIMEOUT, DEADLOCK}
# Errors of a connection itself, as PyMySQL raises them (reads run on raw DBAPI connections).
DRIVER_ERRORS = (pymysql.err.OperationalError, pymysql.err.InterfaceError)
# Every error that says the database could not do the work (not that the work was wrong): the
# driver's, and SQLAlchemy's wrappers of them (writes run on SQLAlchemy connections).
UNAVAILABLE_ERRORS = (*DRIVER_ERRORS, OperationalError, InterfaceError)


def driver_error(error: BaseException) -> BaseException:
    """The PyMySQL error behind ERROR (itself when not wrapped by SQLAlchemy)."""
    return error.orig if isinstance(error, DBAPIError) and error.orig is not None else error


def error_code(error: BaseException) -> int | None:
    """The MySQL error number of ERROR, or None when it is no database error."""
    inner = driver_error(error)
    if isinstance(inner, pymysql.err.InterfaceError):
        return SERVER_GONE  # PyMySQL's "(0, '')": the connection is already closed
    if isinstance(inner, pymysql.err.OperationalError) and inner.args:
        code = inner.args[0]
        return code if isinstance(code, int) else None
    return None


def is_node_failure(error: BaseException) -> bool:
    """ERROR says the node is down or unreachable (not that the request was wrong)."""
    return error_code(error) in NODE_FAILURES


def timed_out(error: BaseException) -> bool:
    """ERROR is a round trip that got no answer within its deadline: the node holds the
    connection open but does not answer (frozen, or stalled); the connection did not die."""
    inner = driver_error(error)
    return isinstance(inner.__cause__ or inner.__context__, TimeoutError)


def is_transient(error: BaseException, *, write: bool) -> bool:
    """ERROR may go away on a second try, and trying again is safe for this kind of work."""
    return error_code(error) in (SAFE_FOR_WRITES if write else SAFE_FOR_READS)


def is_code(error: BaseException, code: int) -> bool:
    """ERROR is the database error CODE (e.g. DUP_ENTRY), wrapped or not."""
    inner = driver_error(error)
    return bool(getattr(inner, "args", None)) and inner.args[0] == code
