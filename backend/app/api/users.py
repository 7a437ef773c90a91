"""Routes of /api/users and /api/users/{id}/posts: parse, call one use case, shape the answer."""

from __future__ import annotations

from flask import Blueprint, Response

from app.api.context import read_call, units, write_call
from app.api.idempotent import idempotent
from app.api.parsing import json_body, query_args
from app.api.responses import answer_response, json_response, served_response
from app.schemas import PostCreate, PostPage, UserCreate, UserPage, UserPatch
from app.services import users

bp = Blueprint("users", __name__, url_prefix="/api/users")
# Any run of ASCII digits: an id no BIGINT can hold is simply not found (404), for every method.
USER = "<int:user_id>"


@bp.post("")
def create_user() -> Response:
    """Create a user: 201 with the user and its Location (once per Idempotency-Key)."""
    data = json_body(UserCreate)
    created = users.create_user(units(), write_call(), data.name, data.second_name, idempotent())
    return answer_response(created)


@bp.get("")
def list_users() -> Response:
    """Users in id order, a page at a time (keyset: ?after=<last id seen>)."""
    query = query_args(UserPage)
    return json_response(users.list_users(units(), read_call(), query.limit, query.after))


@bp.get(f"/{USER}")
def get_user(user_id: int) -> Response:
    """One user (cached)."""
    return served_response(users.get_user(units(), read_call(), user_id))


@bp.patch(f"/{USER}")
def patch_user(user_id: int) -> Response:
    """Change some fields of a user; answers with the whole user (once per Idempotency-Key)."""
    data = json_body(UserPatch)
    changes = data.changes()
    return answer_response(users.update_user(units(), write_call(), user_id, changes, idempotent()))


@bp.delete(f"/{USER}")
def delete_user(user_id: int) -> Response:
    """Delete a user and their posts (once per Idempotency-Key)."""
    return answer_response(users.delete_user(units(), write_call(), user_id, idempotent()))


@bp.post(f"/{USER}/posts")
def create_post(user_id: int) -> Response:
    """Add a post (1-280 characters) to a user (once per Idempotency-Key)."""
    data = json_body(PostCreate)
    created = users.create_post(units(), write_call(), user_id, data.body, idempotent())
    return answer_response(created)


@bp.get(f"/{USER}/posts")
def list_posts(user_id: int) -> Response:
    """A user's posts, newest first, a page at a time (keyset: ?before=<last id seen>)."""
    query = query_args(PostPage)
    return served_response(users.list_posts(units(), read_call(), user_id, query))
