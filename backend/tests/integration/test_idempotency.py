"""Idempotency-Key on every write: a retry returns the first answer and writes nothing twice;
the stored answers are purged after IDEMPOTENCY_RETENTION_S."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from app.gtid import covers
from app.services.consistency import TokenCodec
from stack.settings import Stack
from tests.integration.helpers import Api, Databases, eventually

pytestmark = pytest.mark.integration


def count_users_named(dbs: Databases, second_name: str) -> int:
    return int(
        dbs.scalar("primary", "SELECT COUNT(*) FROM users WHERE second_name = %s", second_name)
    )


def test_a_retried_post_returns_the_first_answer_and_creates_once(api: Api, dbs: Databases) -> None:
    key, name = str(uuid.uuid4()), uuid.uuid4().hex[:20]
    body = {"name": "Retry", "second_name": name}
    first = api.post("/api/users", json=body, headers={"Idempotency-Key": key})
    again = api.post("/api/users", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count_users_named(dbs, name) == 1


def test_reusing_a_key_for_another_request_is_refused(api: Api, dbs: Databases) -> None:
    key = str(uuid.uuid4())
    api.post(
        "/api/users", json={"name": "One", "second_name": "Key"}, headers={"Idempotency-Key": key}
    )
    other = api.post(
        "/api/users", json={"name": "Two", "second_name": "Key"}, headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422
    assert other.headers["Content-Type"] == "application/problem+json"


def test_a_refused_request_carries_no_consistency_token(api: Api) -> None:
    """An error commits nothing: a token there would carry some earlier commit's GTID."""
    key = str(uuid.uuid4())
    body = {"name": "Token", "second_name": "Less"}
    first = api.post("/api/users", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    api.cookies.clear()
    other = api.post("/api/users", json={**body, "name": "Other"}, headers={"Idempotency-Key": key})
    assert other.status_code == 422
    assert "X-Consistency-Token" not in other.headers
    assert "consistency_token" not in other.cookies


def test_concurrent_posts_with_one_key_create_one_user(
    stack: Stack, dbs: Databases, api_key: str
) -> None:
    key, name = str(uuid.uuid4()), uuid.uuid4().hex[:20]

    def post(_: int) -> tuple[int, int]:
        response = requests.post(
            f"{stack.base_url}/api/users",
            timeout=10,
            json={"name": "Race", "second_name": name},
            headers={"Idempotency-Key": key, "X-API-Key": api_key},
        )
        return response.status_code, response.json().get("id", -1)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(post, range(6)))
    assert count_users_named(dbs, name) == 1
    created = [user_id for status, user_id in answers if status == 201]
    assert created
    assert len(set(created)) == 1
    # A request that arrives while the first is still in flight may be told to retry (409).
    assert all(status in (201, 409) for status, _ in answers)


def test_a_post_for_a_missing_user_claims_no_key(api: Api) -> None:
    key = str(uuid.uuid4())
    missing = api.post(
        "/api/users/9000000000/posts", json={"body": "x"}, headers={"Idempotency-Key": key}
    )
    assert missing.status_code == 404
    user = api.create_user("Later", "Owner")
    created = api.post(
        f"/api/users/{user['id']}/posts", json={"body": "x"}, headers={"Idempotency-Key": key}
    )
    assert created.status_code == 201


def test_a_malformed_key_is_a_400(api: Api) -> None:
    response = api.post(
        "/api/users", json={"name": "A", "second_name": "B"}, headers={"Idempotency-Key": "x" * 200}
    )
    assert response.status_code == 400


def test_a_replayed_answer_carries_a_token_that_covers_the_original_write(
    api: Api, stack: Stack
) -> None:
    codec = TokenCodec(stack.env["APP_SECRET_KEY"])
    key = str(uuid.uuid4())
    body = {"name": "Replayed", "second_name": "Token"}
    first = api.post("/api/users", json=body, headers={"Idempotency-Key": key})
    for _ in range(5):  # later writes move other pooled connections' last GTID on
        api.create_user("Other", "Write")
    again = api.post("/api/users", json=body, headers={"Idempotency-Key": key})
    assert again.headers["Idempotent-Replayed"] == "true"
    original = codec.decode(first.headers["X-Consistency-Token"])
    replayed = codec.decode(again.headers["X-Consistency-Token"])
    assert original is not None
    assert replayed is not None
    assert covers(replayed.gtid, original.gtid)


def test_a_patch_re_sent_after_a_newer_one_does_not_apply_its_old_values(
    api: Api, dbs: Databases
) -> None:
    """The hazard a re-sent PATCH has without a key: its values land after a newer write."""
    user = api.create_user("Old", "Patch")
    path, key = f"/api/users/{user['id']}", str(uuid.uuid4())
    first = api.patch(path, json={"name": "First"}, headers={"Idempotency-Key": key})
    newer = api.patch(path, json={"name": "Newer"})
    again = api.patch(path, json={"name": "First"}, headers={"Idempotency-Key": key})
    assert (first.status_code, newer.status_code, again.status_code) == (200, 200, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # the first answer, replayed
    assert dbs.scalar("primary", "SELECT name FROM users WHERE id = %s", user["id"]) == "Newer"


def test_a_re_sent_delete_gets_its_204_again(api: Api) -> None:
    user = api.create_user("Gone", "Twice")
    path, key = f"/api/users/{user['id']}", str(uuid.uuid4())
    first = api.delete(path, headers={"Idempotency-Key": key})
    again = api.delete(path, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (204, 204)
    assert (first.content, again.content) == (b"", b"")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.delete(path).status_code == 404  # without the key: a new request


def test_stored_answers_older_than_the_retention_are_purged(
    api: Api, stack: Stack, dbs: Databases
) -> None:
    """The relays delete keys stored longer ago than IDEMPOTENCY_RETENTION_S (every 10 s)."""
    retention = float(stack.env["IDEMPOTENCY_RETENTION_S"])
    old, fresh = f"test-old-{uuid.uuid4()}", f"test-fresh-{uuid.uuid4()}"
    insert = (
        "INSERT INTO idempotency_keys (idempotency_key, fingerprint, status, body, created_at) "
        "VALUES (%s, REPEAT('0', 64), 201, '', UTC_TIMESTAMP(6) - INTERVAL %s SECOND)"
    )
    dbs.query("primary", insert, old, retention + 60)
    dbs.query("primary", insert, fresh, 0)

    def kept(key: str) -> bool:
        query = "SELECT COUNT(*) FROM idempotency_keys WHERE idempotency_key = %s"
        return bool(dbs.scalar("primary", query, key))

    eventually(lambda: not kept(old), timeout=25)
    assert kept(fresh)
