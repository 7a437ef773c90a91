"""Every cache key, and which keys each write invalidates: the one place that knows both.

Any write, whoever makes it (a route, the CLI, a job, a queue consumer), goes through a use case
in this package, which declares these keys on its unit of work; they are invalidated once it
commits (units.py). A key's version prefix (``c2``) changes when its document's or the key's
shape does.

The id sits in a hash tag (``{user:7}``): the cache's scripts touch a key together with its
stampede lock and admission counter (``<key>:lock``, ``<key>:seen``), and a Redis Cluster runs a
script only when all its keys hash to one slot; the tag puts them in the same one. (c1 keys had
no tag: a cluster refused the scripts with CROSSSLOT.)
"""

from __future__ import annotations


def user(user_id: int) -> str:
    """GET /api/users/{id}."""
    return f"c2:{{user:{user_id}}}"


def posts(user_id: int) -> str:
    """The first page of GET /api/users/{id}/posts (default limit)."""
    return f"c2:{{posts:{user_id}}}"


def after_user_created(user_id: int) -> tuple[str, ...]:
    """A 404 for this id may be cached (someone asked before it existed), for both documents."""
    return user(user_id), posts(user_id)


def after_user_changed(user_id: int) -> tuple[str, ...]:
    """The user's document; its posts page does not show the user's fields."""
    return (user(user_id),)


def after_user_deleted(user_id: int) -> tuple[str, ...]:
    """Both documents are now 404s; the posts went with the user."""
    return user(user_id), posts(user_id)


def after_post_created(user_id: int) -> tuple[str, ...]:
    """The first page of the author's posts."""
    return (posts(user_id),)


def after_counters_changed(user_id: int) -> tuple[str, ...]:
    """The user's document shows its counters."""
    return (user(user_id),)
