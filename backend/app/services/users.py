"""Use cases of users and their posts. Each checks its ids, runs one unit of work or cached read,
and declares the cache keys its write invalidates (cache_keys.py). No Flask here: a route, the
CLI or a queue consumer calls these alike.
"""

from __future__ import annotations

from typing import Any

from app.cache import Outcome, Served
from app.db.clock import utcnow
from app.db.queries import posts as post_rows
from app.db.queries import users as user_rows
from app.errors import NotFound
from app.messaging import events
from app.models import BIGINT_MAX
from app.schemas import PostPage, json_bytes, post_document, timestamp, user_document
from app.services import cache_keys
from app.services.idempotency import Answer, Idempotent, once
from app.services.units import Call, Units, Write

Document = dict[str, Any]
FIRST_PAGE = PostPage.model_validate({})


def existing(user_id: int) -> int:
    """USER_ID, or NotFound at once when no BIGINT id can be it."""
    if user_id > BIGINT_MAX:
        raise NotFound("user", user_id)
    return user_id


def page(items: list[Document], limit: int, path: str, next_query: str) -> Document:
    """A page of items with the URL of the next page (null on the last page)."""
    return {"items": items, "next": f"{path}?{next_query}" if len(items) == limit else None}


def create_user(
    units: Units, call: Call, name: str, second_name: str, request: Idempotent | None
) -> Answer:
    """A new user: 201 with the user and its path (once per idempotency key)."""

    def create(unit: Write) -> Answer:
        user = user_rows.create_user(conn=unit.conn, name=name, second_name=second_name)
        unit.touches(*cache_keys.after_user_created(user["id"]))
        unit.records(events.USER_CREATED, user["id"], user["created_at"])
        return Answer(201, json_bytes(user_document(user)), f"/api/users/{user['id']}")

    return once(units, call, request, create)


def list_users(units: Units, call: Call, limit: int, after: int) -> Document:
    """Users in id order, a page at a time (keyset: after the last id seen)."""
    rows = units.read(lambda conn: user_rows.list_users(conn=conn, limit=limit, after=after), call)
    last = rows[-1]["id"] if rows else after
    return page(
        [user_document(r) for r in rows], limit, "/api/users", f"limit={limit}&after={last}"
    )


def get_user(units: Units, call: Call, user_id: int) -> Served:
    """One user (cached)."""
    return units.cached(
        cache_keys.user(existing(user_id)),
        "user",
        lambda conn: user_rows.find_user_body(conn=conn, user_id=user_id),
        call,
        NotFound("user", user_id),
    )


def update_user(
    units: Units, call: Call, user_id: int, changes: dict[str, str], request: Idempotent | None
) -> Answer:
    """Change some fields of a user: 200 with the whole user as it now is (once per key: a
    PATCH re-sent after a newer one must not apply its old values again)."""
    existing(user_id)

    def update(unit: Write) -> Answer:
        user = user_rows.update_user(conn=unit.conn, user_id=user_id, changes=changes)
        unit.touches(*cache_keys.after_user_changed(user_id))
        unit.records(events.USER_UPDATED, user_id, user["updated_at"], changed=sorted(changes))
        return Answer(200, json_bytes(user_document(user)))

    return once(units, call, request, update)


def delete_user(units: Units, call: Call, user_id: int, request: Idempotent | None) -> Answer:
    """Delete a user and their posts: 204 (once per key: a re-sent delete gets the 204 again)."""
    existing(user_id)

    def delete(unit: Write) -> Answer:
        user_rows.delete_user(conn=unit.conn, user_id=user_id)
        unit.touches(*cache_keys.after_user_deleted(user_id))
        unit.records(events.USER_DELETED, user_id, utcnow())
        return Answer(204, b"")

    return once(units, call, request, delete)


def create_post(
    units: Units, call: Call, user_id: int, body: str, request: Idempotent | None
) -> Answer:
    """A new post of a user: 201 with the post (once per idempotency key)."""
    existing(user_id)

    def create(unit: Write) -> Answer:
        post = post_rows.create_post(conn=unit.conn, user_id=user_id, body=body)
        unit.touches(*cache_keys.after_post_created(user_id))
        unit.records(
            events.POST_CREATED,
            post["id"],
            post["created_at"],
            user_id=user_id,
            created_at=timestamp(post["created_at"]),
            body=post["body"],  # the live streams show the post without reading it back
        )
        return Answer(201, json_bytes(post_document(post)))

    return once(units, call, request, create)


def list_posts(units: Units, call: Call, user_id: int, query: PostPage) -> Served:
    """A user's posts, newest first, a page at a time (keyset: before the last id seen).

    The first page with the default limit is cached: it is what a profile view asks for.
    """
    missing = NotFound("user", existing(user_id))

    def fetch(conn: Any) -> Document | None:
        return posts_page(conn, user_id, query)

    if query == FIRST_PAGE:
        return units.cached(cache_keys.posts(user_id), "posts", fetch, call, missing)
    document = units.read(fetch, call)
    if document is None:
        raise missing
    return Served(200, json_bytes(document), Outcome.BYPASS)


def posts_page(conn: Any, user_id: int, query: PostPage) -> Document | None:
    """One page of a user's posts as a document; None when there is no such user."""
    rows = post_rows.list_posts(conn=conn, user_id=user_id, limit=query.limit, before=query.before)
    if rows is None:
        return None
    next_query = f"limit={query.limit}&before={rows[-1]['id'] if rows else None}"
    return page(
        [post_document(r) for r in rows], query.limit, f"/api/users/{user_id}/posts", next_query
    )
