"""Read-your-writes: a read that presents a write's token never sees data older than that write."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from stack.settings import Stack
from tests.integration.helpers import Api, Databases, eventually

pytestmark = pytest.mark.integration


def stall_replication(dbs: Databases) -> None:
    """Stop every replica's SQL thread: replicas keep answering, with data that ages."""
    for replica in dbs.stack.replicas:
        dbs.query(replica.name, "STOP REPLICA SQL_THREAD")


@pytest.fixture
def replication_restarted(dbs: Databases) -> Iterator[None]:
    """Whatever the test stalls, replication runs and has caught up afterwards."""
    yield
    for replica in dbs.stack.replicas:
        dbs.query(replica.name, "START REPLICA SQL_THREAD")
    dbs.wait_replicated()


def test_a_write_answers_with_a_token_in_header_and_cookie(api: Api) -> None:
    response = api.post("/api/users", json={"name": "Token", "second_name": "Bearer"})
    token = response.headers["X-Consistency-Token"]
    assert token
    assert response.cookies["consistency_token"] == token


def test_a_forged_token_is_refused(api: Api) -> None:
    response = api.get("/api/users/1", headers={"X-Consistency-Token": "WyIwLTEtOTk5Il0.forged"})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"


def test_with_replication_stalled_a_token_read_sees_the_write_from_the_primary(
    api: Api, dbs: Databases, replication_restarted: None
) -> None:
    user = api.create_user("Before", "Stall")
    dbs.wait_replicated()
    stall_replication(dbs)
    patched = api.patch(f"/api/users/{user['id']}", json={"name": "After"})
    token = patched.headers["X-Consistency-Token"]

    with_token = requests.get(
        f"{dbs.stack.base_url}/api/users/{user['id']}",
        headers={"X-Consistency-Token": token},
        timeout=5,
    )
    assert with_token.json()["name"] == "After"
    assert with_token.headers["X-DB-Node"] == "primary"

    # The replicas really are behind: without the token's guarantee, they would answer "Before".
    for replica in dbs.stack.replicas:
        row = dbs.scalar(replica.name, "SELECT name FROM users WHERE id = %s", user["id"])
        assert row == "Before"
    without_token = requests.get(
        f"{dbs.stack.base_url}/api/users?limit=1&after={user['id'] - 1}", timeout=5
    )
    assert without_token.status_code == 200
    served_by_replica = without_token.headers["X-DB-Node"] != "primary"
    names = [u["name"] for u in without_token.json()["items"]]
    # Without a token there is no promise: a replica not yet ejected may serve the old row.
    assert names == (["Before"] if served_by_replica else ["After"])


def client_round(stack: Stack, api_key: str, client: int, rounds: int) -> int:
    """Write, then read the write back with the token, ROUNDS times; count stale reads."""
    session, stale = Api("", api_key), 0
    base = stack.base_url
    user = session.post(
        f"{base}/api/users", json={"name": f"c{client}-0", "second_name": "RYW"}, timeout=10
    ).json()
    for n in range(1, rounds + 1):
        name = f"c{client}-{n}"
        session.patch(f"{base}/api/users/{user['id']}", json={"name": name}, timeout=10)
        if session.get(f"{base}/api/users/{user['id']}", timeout=10).json()["name"] != name:
            stale += 1
        session.post(f"{base}/api/users/{user['id']}/posts", json={"body": name}, timeout=10)
        first_post = session.get(f"{base}/api/users/{user['id']}/posts", timeout=10).json()[
            "items"
        ][0]
        if first_post["body"] != name:
            stale += 1
    return stale


def test_concurrent_clients_never_read_stale_after_their_own_writes(
    stack: Stack, api_key: str
) -> None:
    clients, rounds = 8, 25
    with ThreadPoolExecutor(max_workers=clients) as pool:
        stale = sum(pool.map(lambda c: client_round(stack, api_key, c, rounds), range(clients)))
    assert stale == 0


def test_token_reads_return_to_replicas_once_they_catch_up(api: Api, dbs: Databases) -> None:
    user = api.create_user("Caught", "Up")
    dbs.wait_replicated()

    def served_by_a_replica() -> bool:
        response = api.get(f"/api/users?limit=1&after={user['id'] - 1}")
        return response.headers["X-DB-Node"].startswith("replica-")

    eventually(served_by_a_replica)
