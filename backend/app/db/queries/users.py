"""SQL of users: insert, read, list by keyset, update, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, update

from app.db.clock import utcnow
from app.db.sql import fetch_all, fetch_one, fetch_value
from app.errors import NotFound
from app.models import users

User = dict[str, Any]
# With the counters the queue's workers keep (user_stats; none yet: 0 posts).
USERS_WITH_STATS = "FROM users u LEFT JOIN user_stats s ON s.user_id = u.id "
USER_COLUMNS = (
    "SELECT u.id, u.name, u.second_name, u.created_at, u.updated_at, "
    "COALESCE(s.post_count, 0) AS post_count, s.last_post_at " + USERS_WITH_STATS
)
GET_USER = USER_COLUMNS + "WHERE u.id = %s"
# The same user as the API's document (app.schemas.user_document, as json_bytes encodes it),
# rendered by MariaDB: one column to parse instead of seven, no conversion in Python. A cold
# read's client CPU halves (docs/caching.md, "A cold read's diet"); a test keeps the two equal.
# Timestamps as app.schemas.timestamp writes them (%% is a literal % for the driver).
GET_USER_BODY = (
    "SELECT JSON_COMPACT(JSON_OBJECT('id', u.id, 'name', u.name, 'second_name', u.second_name, "
    "'created_at', DATE_FORMAT(u.created_at, '%%Y-%%m-%%dT%%H:%%i:%%s.%%fZ'), "
    "'updated_at', DATE_FORMAT(u.updated_at, '%%Y-%%m-%%dT%%H:%%i:%%s.%%fZ'), "
    "'post_count', COALESCE(s.post_count, 0), "
    "'last_post_at', DATE_FORMAT(s.last_post_at, '%%Y-%%m-%%dT%%H:%%i:%%s.%%fZ'))) "
    + USERS_WITH_STATS
    + "WHERE u.id = %s"
)
LIST_USERS = USER_COLUMNS + "WHERE u.id > %s ORDER BY u.id LIMIT %s"


def create_user(*, conn: Connection, name: str, second_name: str) -> User:
    """Insert a user and return it as stored (timestamps set here, so no read-back is needed)."""
    now = utcnow()
    row = {"name": name, "second_name": second_name, "created_at": now, "updated_at": now}
    result = conn.execute(insert(users).values(**row))
    return {"id": result.lastrowid, **row}


def find_user(*, conn: Any, user_id: int) -> User | None:
    """One user by id (on a read or a write connection), or None."""
    return fetch_one(conn, GET_USER, (user_id,))


def find_user_body(*, conn: Any, user_id: int) -> bytes | None:
    """One user by id as the API's JSON body, or None (on a read connection)."""
    body: str | None = fetch_value(conn, GET_USER_BODY, (user_id,))
    return None if body is None else body.encode()


def get_user(*, conn: Any, user_id: int) -> User:
    """One user by id; NotFound when there is none."""
    row = find_user(conn=conn, user_id=user_id)
    if row is None:
        raise NotFound("user", user_id)
    return row


def list_users(*, conn: Any, limit: int, after: int) -> list[User]:
    """Up to LIMIT users with id greater than AFTER, ascending by id (keyset pagination)."""
    return fetch_all(conn, LIST_USERS, (after, limit))


def update_user(*, conn: Connection, user_id: int, changes: dict[str, str]) -> User:
    """Apply CHANGES to one user and return the row as it now is (same transaction)."""
    result = conn.execute(
        update(users).where(users.c.id == user_id).values(**changes, updated_at=utcnow())
    )
    if result.rowcount == 0:
        raise NotFound("user", user_id)
    return get_user(conn=conn, user_id=user_id)


def delete_user(*, conn: Connection, user_id: int) -> None:
    """Delete one user; their posts go with them (ON DELETE CASCADE)."""
    if conn.execute(delete(users).where(users.c.id == user_id)).rowcount == 0:
        raise NotFound("user", user_id)
