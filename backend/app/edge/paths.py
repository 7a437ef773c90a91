"""Which edge copies an event makes wrong: the URL paths nginx keys its copies by ($uri).

Two moments: what the write itself changed is wrong at once; what a queue worker derives from
the event (a user's post_count and last_post_at) is wrong only once a worker has applied it, so
that path is purged after the workers' consumer has acknowledged the event.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.messaging.events import POST_CREATED, USER_CREATED, USER_DELETED, USER_UPDATED, Received


def user_path(user_id: int) -> str:
    return f"/api/users/{user_id}"


def posts_path(user_id: int) -> str:
    """The first page of the user's posts (the only page the edge keeps: no query string)."""
    return f"/api/users/{user_id}/posts"


@dataclass(frozen=True)
class Stale:
    """The paths EVENT makes wrong: NOW at once, AFTER_APPLIED once the workers applied it."""

    now: tuple[str, ...] = ()
    after_applied: tuple[str, ...] = ()


def stale_paths(event: Received) -> Stale:
    """The edge paths EVENT changes (none for an event type the edge does not show)."""
    if event.type in (USER_CREATED, USER_DELETED):  # a cached 404, or the posts of a user gone
        return Stale(now=(user_path(event.aggregate_id), posts_path(event.aggregate_id)))
    if event.type == USER_UPDATED:
        return Stale(now=(user_path(event.aggregate_id),))
    if event.type == POST_CREATED:
        user_id = int(event.data["user_id"])
        return Stale(now=(posts_path(user_id),), after_applied=(user_path(user_id),))
    return Stale()
