"""SQL of posts: insert for a user, list a user's newest first by keyset."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from app.db.clock import utcnow
from app.db.errors import NO_REFERENCED_ROW, is_code
from app.db.sql import fetch_all, fetch_one
from app.errors import NotFound
from app.models import BIGINT_MAX, posts

Post = dict[str, Any]


def create_post(*, conn: Connection, user_id: int, body: str) -> Post:
    """Insert a post for USER_ID; the foreign key proves the user exists in the same statement."""
    row = {"user_id": user_id, "body": body, "created_at": utcnow()}
    try:
        result = conn.execute(insert(posts).values(**row))
    except IntegrityError as error:
        if is_code(error, NO_REFERENCED_ROW):  # the user does not exist
            raise NotFound("user", user_id) from error
        raise
    return {"id": result.lastrowid, **row}


# A page of one user's posts. The (user_id, id) index is the only good plan, so it is named:
# without statistics (a replica that bulk-loaded into an empty table has none until ANALYZE
# TABLE) the optimizer walked the primary key down from BEFORE instead, through every user's
# posts until LIMIT of this user's turned up: ~40 ms for a user with no posts among 100,000,
# against 0.4 ms through the index.
PAGE_SQL = (
    "SELECT id, user_id, body, created_at FROM posts FORCE INDEX (ix_posts_user_id_id) "
    "WHERE user_id = %s AND id < %s ORDER BY id DESC LIMIT %s"
)


def list_posts(*, conn: Any, user_id: int, limit: int, before: int | None) -> list[Post] | None:
    """Up to LIMIT posts of USER_ID older than BEFORE, newest first (keyset pagination); None
    when there is no such user."""
    rows = fetch_all(conn, PAGE_SQL, (user_id, before or BIGINT_MAX, limit))
    if not rows and not user_exists(conn=conn, user_id=user_id):
        return None
    return rows


def user_exists(*, conn: Any, user_id: int) -> bool:
    """True when a user with this id exists."""
    return fetch_one(conn, "SELECT id FROM users WHERE id = %s", (user_id,)) is not None
