"""Which edge copies each event makes wrong, and when."""

from __future__ import annotations

import pytest

from app.edge.paths import Stale, stale_paths
from app.messaging.events import Received


@pytest.mark.parametrize(
    ("kind", "aggregate_id", "data", "stale"),
    [
        ("user.created", 7, {}, Stale(now=("/api/users/7", "/api/users/7/posts"))),
        ("user.updated", 7, {}, Stale(now=("/api/users/7",))),
        ("user.deleted", 7, {}, Stale(now=("/api/users/7", "/api/users/7/posts"))),
        # A new post: the posts page at once, the user (post_count) once a worker applied it.
        (
            "post.created",
            42,
            {"user_id": 7},
            Stale(now=("/api/users/7/posts",), after_applied=("/api/users/7",)),
        ),
    ],
)
def test_an_event_names_the_copies_it_changes(
    kind: str, aggregate_id: int, data: dict[str, int], stale: Stale
) -> None:
    assert stale_paths(Received("0" * 32, kind, aggregate_id, data)) == stale
