"""nginx's edge cache (EDGE_CACHE=on, as `make up` has it): which requests it answers, the
headers of its answers, read-your-writes through it, and how fresh it stays with copies that
live until the edge purger drops them (the event stream), under faults too."""

from __future__ import annotations

import time

import pytest
import requests

from stack.nginx import edge_serving
from stack.settings import Stack
from stack.waiting import until
from tests.integration.conftest import launcher
from tests.integration.edge import (  # noqa: F401 (edge_on: a fixture)
    BOUND_S,
    MIN_USES,
    admit,
    anonymous,
    edge_answer,
    edge_on,
    freshness,
    serving,
)
from tests.integration.helpers import Api

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("edge_on")]


EDGE_HEADERS = [
    "X-Cache",
    "X-DB-Node",
    "X-Served-By",
    "X-Request-ID",
    "X-Content-Type-Options",
    "Cache-Control",
    "Set-Cookie",
]


def test_a_repeated_anonymous_read_is_answered_by_the_edge_with_true_headers(
    api: Api, stack: Stack
) -> None:
    user = api.create_user("Edge", "Once")
    path = f"/api/users/{user['id']}"
    for first in admit(stack, path):
        assert first.headers["X-Cache"] != "EDGE"
        assert first.headers["X-Served-By"].startswith("api-")
    second = edge_answer(stack, path, **{"X-Request-ID": "edge-second"})
    assert (second.status_code, second.json()) == (200, user)
    assert {name: second.headers.get(name) for name in EDGE_HEADERS} == {
        "X-Cache": "EDGE",
        "X-DB-Node": "none",
        "X-Served-By": "edge",
        "X-Request-ID": "edge-second",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
        "Set-Cookie": None,
    }


def test_a_patch_is_followed_by_a_fresh_edge_answer(api: Api, stack: Stack) -> None:
    user = api.create_user("Old", "Name")
    path = f"/api/users/{user['id']}"
    admit(stack, path)
    assert edge_answer(stack, path).json()["name"] == "Old"
    assert api.patch(path, json={"name": "New"}).status_code == 200
    # The purge follows the 2xx by tens of milliseconds (the relay's poll, the broker, the
    # purger: the p99 is bounded by the freshness test below); then the new name is read, first
    # from the API (refilling the edge), then from the edge.
    until(lambda: anonymous(stack, path).json()["name"] == "New", 2.0, "the new name")
    assert edge_answer(stack, path).json()["name"] == "New"


def test_a_missing_user_is_kept_at_the_edge_as_a_404(stack: Stack) -> None:
    path = "/api/users/987654321"
    admit(stack, path)
    second = anonymous(stack, path)
    assert (second.status_code, second.headers["X-Cache"]) == (404, "EDGE")
    assert second.headers["Content-Type"] == "application/problem+json"


def test_the_first_page_of_posts_is_kept_at_the_edge_and_other_pages_are_not(
    api: Api, stack: Stack
) -> None:
    user = api.create_user("Edge", "Pages")
    api.post(f"/api/users/{user['id']}/posts", json={"body": "kept"})
    first_page = f"/api/users/{user['id']}/posts"
    admit(stack, first_page)
    assert edge_answer(stack, first_page).json()["items"][0]["body"] == "kept"
    for _ in range(3):
        assert anonymous(stack, first_page + "?limit=5").headers["X-Cache"] != "EDGE"
        assert anonymous(stack, "/api/users?limit=1").headers["X-Cache"] != "EDGE"


def test_a_key_a_token_or_a_cookie_goes_past_the_edge(api: Api, stack: Stack) -> None:
    user = api.create_user("Edge", "Bypass")
    write = api.patch(f"/api/users/{user['id']}", json={"second_name": "Passed"})
    token = write.headers["X-Consistency-Token"]
    path = f"/api/users/{user['id']}"
    admit(stack, path)
    edge_answer(stack, path)
    for headers in (
        {"X-API-Key": api.api_key or ""},
        {"X-Consistency-Token": token},
        {"Cookie": f"consistency_token={token}"},
    ):
        response = anonymous(stack, path, **headers)
        assert response.status_code == 200, response.text
        assert response.headers["X-Cache"] != "EDGE", headers
        assert response.headers["X-Served-By"].startswith("api-")


def test_read_your_writes_holds_through_the_edge(api: Api, stack: Stack) -> None:
    user = api.create_user("Before", "Write")
    path = f"/api/users/{user['id']}"
    admit(stack, path)  # the edge now keeps "Before"
    written = api.patch(path, json={"name": "After"})
    assert written.status_code == 200, written.text
    token = written.headers["X-Consistency-Token"]
    # The writer's own session sends the cookie, another of its clients the header: each sees
    # the write at once, before any purge.
    assert api.get(path).json()["name"] == "After"
    assert anonymous(stack, path, **{"X-Consistency-Token": token}).json()["name"] == "After"


def test_an_unchanged_hot_key_reaches_the_api_only_until_it_is_stored(stack: Stack) -> None:
    # An id no write touches (a user who does not exist: its 404 is kept like a 200), and that
    # nginx has not counted before (its admission count outlives a copy).
    path = f"/api/users/{900_000_000 + time.time_ns() % 10**8}"
    with requests.Session() as session:
        answers = [session.get(f"{stack.base_url}{path}", timeout=10) for _ in range(300)]
    assert {a.status_code for a in answers} == {404}
    from_api = [n for n, a in enumerate(answers) if a.headers["X-Cache"] != "EDGE"]
    # Stored from its MIN_USES-th request, then kept: no expiry in the way (the TTL is 600 s).
    assert from_api == list(range(MIN_USES)), from_api


def test_a_purge_cannot_be_forged_from_the_public_port(stack: Stack) -> None:
    """There is no purge endpoint: the purger deletes the copy's file. What a client can try
    on the public port is refused with problem+json, and the copy stays."""
    admit(stack, "/api/users/987650001")
    for method, path in (("PURGE", "/api/users/987650001"), ("GET", "/_edge/purge/api/users/1")):
        response = requests.request(method, f"{stack.base_url}{path}", timeout=10)
        assert response.status_code in (404, 405), (method, response.status_code)
        assert response.headers["Content-Type"] == "application/problem+json"
    assert anonymous(stack, "/api/users/987650001").headers["X-Cache"] == "EDGE"


def test_patches_of_hot_users_are_seen_through_the_edge_within_100_ms(
    api: Api, stack: Stack
) -> None:
    result = freshness(stack, api, writes=200)
    print(result.summary)
    assert result.edge_share > 0.5, result.summary
    assert result.p99 <= BOUND_S, result.summary
    assert result.final_fresh, result.summary


def test_new_posts_are_counted_through_the_edge_within_100_ms(api: Api, stack: Stack) -> None:
    result = freshness(stack, api, writes=120, posts=True)
    print(result.summary)
    assert result.edge_share > 0.5, result.summary
    assert result.p99 <= BOUND_S, result.summary
    assert result.final_fresh, result.summary


def test_the_edge_follows_its_purger_switch(stack: Stack) -> None:
    assert edge_serving(stack)
    readyz = requests.get(f"{stack.internal_url}/readyz", timeout=10).json()
    assert readyz["checks"]["edge"]["status"] == "ok", readyz["checks"].get("edge")


def test_after_an_idle_gap_past_the_ttl_a_write_is_read_fresh_through_the_edge(
    api: Api, stack: Stack
) -> None:
    """How old an edge answer can be is the purge's bound, not the copy's age: with a TTL of 2 s
    (nginx serves an expired copy while it refreshes it, `use_stale updating`), a copy left
    unread past its TTL and then changed by a write is never served again: the purge removed it
    while nobody read, expired or not."""
    launcher("up", {"EDGE_CACHE": "on", "EDGE_CACHE_TTL_S": "2"})
    try:
        serving(stack)
        user = api.create_user("Idle", "Gap")
        path = f"/api/users/{user['id']}"
        admit(stack, path)
        assert edge_answer(stack, path).json()["name"] == "Idle"
        time.sleep(3.0)  # the gap itself: no read of PATH for longer than the TTL
        assert api.patch(path, json={"name": "Woken"}).status_code == 200
        until(lambda: anonymous(stack, path).json()["name"] == "Woken", 2.0, "the new name")
        names = {anonymous(stack, path).json()["name"] for _ in range(20)}
        assert names == {"Woken"}
    finally:
        launcher("up", {"EDGE_CACHE": "on"})
        serving(stack)
