"""Plain SQL on either kind of connection a unit of work holds.

Reads run on raw DBAPI connections from the pool (see routing.py: in this stack, SQLAlchemy's
Connection and statement compilation cost as much CPU as the query itself); writes run on a
SQLAlchemy Connection inside a transaction. The use cases write their reads once, in SQL with
DBAPI placeholders (``%s``), and this module runs them on either.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

Row = dict[str, Any]


def fetch_all(conn: Any, sql: str, params: tuple[Any, ...]) -> list[Row]:
    """Every row of SQL as a dict keyed by column name."""
    if isinstance(conn, Connection):
        return [dict(row) for row in conn.exec_driver_sql(sql, params).mappings()]
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()


def fetch_one(conn: Any, sql: str, params: tuple[Any, ...]) -> Row | None:
    """The first row of SQL, or None."""
    rows = fetch_all(conn, sql, params)
    return rows[0] if rows else None


def fetch_value(conn: Any, sql: str, params: tuple[Any, ...]) -> Any:
    """The first column of SQL's first row, or None when there is no row."""
    if isinstance(conn, Connection):
        return conn.exec_driver_sql(sql, params).scalar()
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return None if row is None else row[0]
    finally:
        cursor.close()
