"""Routes of /api/users and /api/users/{id}/posts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from app.api.data import Write, cached, json_bytes, json_response, read, write
from app.api.idempotent import Answer, idempotent
from app.api.parsing import json_body, query_args
from app.schemas import (
    PostCreate,
    PostPage,
    UserCreate,
    UserPage,
    UserPatch,
    post_document,
    user_document,
)
from app.services import posts, users

bp = Blueprint("users", __name__, url_prefix="/api/users")
# Ids are BIGINT: anything larger is simply not found, never an out-of-range database error.
USER = "<int(max=9223372036854775807):user_id>"
FIRST_PAGE = PostPage.model_validate({})


def user_key(user_id: int) -> str:
    """Cache key of GET /api/users/{id}."""
    return f"c1:user:{user_id}"


def posts_key(user_id: int) -> str:
    """Cache key of the first page of GET /api/users/{id}/posts (default limit)."""
    return f"c1:posts:{user_id}"


def page(items: list[dict[str, Any]], limit: int, next_query: str) -> dict[str, Any]:
    """A page of items with the URL of the next page (null on the last page): this request's
    path with NEXT_QUERY."""
    return {"items": items, "next": f"{request.path}?{next_query}" if len(items) == limit else None}


@bp.post("")
def create_user() -> Response:
    """Create a user: 201 with the user and its Location (once per Idempotency-Key)."""
    data = json_body(UserCreate)

    def create(unit: Write) -> Answer:
        user = users.create_user(conn=unit.conn, name=data.name, second_name=data.second_name)
        # A 404 for this id may be cached (someone asked before it existed).
        unit.touches(user_key(user["id"]), posts_key(user["id"]))
        return 201, json_bytes(user_document(user)), {"Location": f"/api/users/{user['id']}"}

    return idempotent(create)


@bp.get("")
def list_users() -> Response:
    """Users in id order, a page at a time (keyset: ?after=<last id seen>)."""
    query = query_args(UserPage)
    rows = read(lambda conn: users.list_users(conn=conn, limit=query.limit, after=query.after))
    after = rows[-1]["id"] if rows else query.after
    next_query = f"limit={query.limit}&after={after}"
    return json_response(page([user_document(r) for r in rows], query.limit, next_query))


@bp.get(f"/{USER}")
def get_user(user_id: int) -> Response:
    """One user (cached)."""
    return cached(
        user_key(user_id),
        "user",
        lambda conn: user_document(users.get_user(conn=conn, user_id=user_id)),
    )


@bp.patch(f"/{USER}")
def patch_user(user_id: int) -> Response:
    """Change some fields of a user; answers with the whole user."""
    data = json_body(UserPatch)

    def update(unit: Write) -> dict[str, Any]:
        user = users.update_user(conn=unit.conn, user_id=user_id, changes=data.changes())
        unit.touches(user_key(user_id))
        return user

    return json_response(user_document(write(update)))


@bp.delete(f"/{USER}")
def delete_user(user_id: int) -> tuple[str, int]:
    """Delete a user and their posts."""

    def delete(unit: Write) -> None:
        users.delete_user(conn=unit.conn, user_id=user_id)
        unit.touches(user_key(user_id), posts_key(user_id))

    write(delete)
    return "", 204


@bp.post(f"/{USER}/posts")
def create_post(user_id: int) -> Response:
    """Add a post (1-280 characters) to a user (once per Idempotency-Key)."""
    data = json_body(PostCreate)

    def create(unit: Write) -> Answer:
        post = posts.create_post(conn=unit.conn, user_id=user_id, body=data.body)
        unit.touches(posts_key(user_id))
        return 201, json_bytes(post_document(post)), {}

    return idempotent(create)


@bp.get(f"/{USER}/posts")
def list_posts(user_id: int) -> Response:
    """A user's posts, newest first, a page at a time (keyset: ?before=<last id seen>).

    The first page with the default limit is cached: it is what a profile view asks for.
    """
    query = query_args(PostPage)
    if query == FIRST_PAGE:
        return cached(posts_key(user_id), "posts", lambda conn: posts_page(conn, user_id, query))
    return json_response(read(lambda conn: posts_page(conn, user_id, query)))


def posts_page(conn: Any, user_id: int, query: PostPage) -> dict[str, Any]:
    """One page of a user's posts as a document."""
    rows = posts.list_posts(conn=conn, user_id=user_id, limit=query.limit, before=query.before)
    before = rows[-1]["id"] if rows else None
    next_query = f"limit={query.limit}&before={before}"
    return page([post_document(r) for r in rows], query.limit, next_query)
