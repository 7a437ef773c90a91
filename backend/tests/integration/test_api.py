"""The HTTP contract through nginx: resources, pagination, headers, load balancing and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.db.queries import users as user_rows
from app.schemas import json_bytes, user_document
from tests.integration.helpers import Api, Databases, eventually

pytestmark = pytest.mark.integration

MISSING = 9_000_000_000
BAD_REQUESTS: list[tuple[str, str, Any, int]] = [
    # (method, path, json body or raw bytes, expected status)
    ("POST", "/api/users", {"second_name": "L"}, 422),
    ("POST", "/api/users", {"name": 7, "second_name": "L"}, 422),
    ("POST", "/api/users", {"name": "x" * 65, "second_name": "L"}, 422),
    ("POST", "/api/users", b'{"name": "Ada"', 400),
    ("POST", "/api/users", b"x" * 70_000, 413),
    ("PATCH", f"/api/users/{MISSING}", {"name": "A"}, 404),
    ("DELETE", f"/api/users/{MISSING}", None, 404),
    ("GET", f"/api/users/{MISSING}", None, 404),
    ("POST", f"/api/users/{MISSING}/posts", {"body": "hello"}, 404),
    ("GET", f"/api/users/{MISSING}/posts", None, 404),
    ("POST", "/api/users/1/posts", {"body": "x" * 281}, 422),
    ("PUT", "/api/users/1", {"name": "A"}, 405),
    ("GET", "/api/users?limit=500", None, 422),
]


def send(api: Api, method: str, path: str, body: Any) -> Any:
    if isinstance(body, bytes):
        return api.request(method, path, data=body, headers={"Content-Type": "application/json"})
    return api.request(method, path, json=body)


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_REQUESTS)
def test_bad_input_gets_a_problem_and_writes_nothing(
    api: Api, dbs: Databases, method: str, path: str, body: Any, status: int
) -> None:
    before = dbs.data_checksum()
    response = send(api, method, path, body)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert response.headers["X-Request-ID"]
    assert dbs.data_checksum() == before


def test_user_lifecycle(api: Api) -> None:
    user = api.create_user("Hedy", "Lamarr")
    assert api.get(f"/api/users/{user['id']}").status_code == 200

    patched = api.patch(f"/api/users/{user['id']}", json={"second_name": "Kiesler"})
    assert patched.status_code == 200
    assert patched.json()["second_name"] == "Kiesler"
    assert patched.json()["name"] == "Hedy"
    assert patched.json()["updated_at"] > user["updated_at"]

    assert api.delete(f"/api/users/{user['id']}").status_code == 204
    assert api.delete(f"/api/users/{user['id']}").status_code == 404


def test_create_answers_with_the_location_of_the_new_user(api: Api) -> None:
    response = api.post("/api/users", json={"name": "Ada", "second_name": "Lovelace"})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/users/{response.json()['id']}"


def test_users_are_listed_by_keyset_pages(api: Api, dbs: Databases) -> None:
    ids = [api.create_user(f"Page{i}", "Reader")["id"] for i in range(5)]
    dbs.wait_replicated()
    first = api.get(f"/api/users?limit=2&after={ids[0] - 1}").json()
    assert [u["id"] for u in first["items"]] == ids[:2]
    second = api.get(first["next"]).json()
    assert [u["id"] for u in second["items"]] == ids[2:4]


def test_posts_are_listed_newest_first_by_keyset_pages(api: Api, dbs: Databases) -> None:
    user = api.create_user("Poster", "Writer")
    post_ids = []
    for i in range(5):
        response = api.post(f"/api/users/{user['id']}/posts", json={"body": f"post {i}"})
        assert response.status_code == 201
        post_ids.append(response.json()["id"])
    dbs.wait_replicated()
    page = api.get(f"/api/users/{user['id']}/posts?limit=3").json()
    assert [p["id"] for p in page["items"]] == post_ids[::-1][:3]
    rest = api.get(page["next"]).json()
    assert [p["id"] for p in rest["items"]] == post_ids[::-1][3:]
    assert rest["next"] is None


def test_deleting_a_user_deletes_their_posts(api: Api, dbs: Databases) -> None:
    user = api.create_user()
    api.post(f"/api/users/{user['id']}/posts", json={"body": "soon gone"})
    api.delete(f"/api/users/{user['id']}")
    assert dbs.scalar("primary", "SELECT COUNT(*) FROM posts WHERE user_id = %s", user["id"]) == 0


def test_thirty_requests_are_spread_over_all_three_api_replicas(api: Api) -> None:
    served = [api.get("/api/users?limit=1").headers["X-Served-By"] for _ in range(30)]
    assert set(served) == {"api-1", "api-2", "api-3"}


def test_every_api_response_shows_its_path_through_the_stack(api: Api) -> None:
    response = api.get("/api/users?limit=1", headers={"X-Request-ID": "trace-me-42"})
    assert response.headers["X-Request-ID"] == "trace-me-42"
    assert response.headers["X-Served-By"].startswith("api-")
    assert response.headers["X-DB-Node"] in {"replica-1", "replica-2", "primary"}
    assert response.headers["X-Cache"] == "BYPASS"  # lists are not cached


def test_nginx_generates_a_request_id_when_the_client_sends_none(api: Api) -> None:
    ids = {api.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    assert all(len(i) == 32 for i in ids)


def test_nginx_hides_its_version(api: Api) -> None:
    assert api.get("/healthz").headers["Server"] == "nginx"


def test_readyz_reports_each_dependency(api: Api) -> None:
    response = api.readyz()
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {
        "primary",
        "replica-1",
        "replica-2",
        "heartbeat",
        "redis",
        "broker",
        "edge",
    }
    assert all(c["status"] == "ok" and "latency_ms" in c for c in checks.values()), checks
    assert checks["replica-1"]["lag_s"] is not None
    broker = checks["broker"]
    assert (broker["answering"], broker["cluster_size"]) == (3, 3)
    assert broker["stream"]["leader"] in {"nats-1", "nats-2", "nats-3"}


def test_every_answer_through_nginx_forbids_content_sniffing(api: Api) -> None:
    answers = [
        api.get("/api/users?limit=1"),  # the API
        api.get("/api/users/0"),  # the API's 404
        api.get("/healthz"),
        api.post("/api/users", data=b"x" * 70_000, headers={"Content-Type": "application/json"}),
    ]
    assert [a.status_code for a in answers] == [200, 404, 200, 413]  # the 413 is nginx's own
    assert {a.headers.get("X-Content-Type-Options") for a in answers} == {"nosniff"}


def test_the_database_renders_a_user_as_the_api_does(api: Api, dbs: Databases) -> None:
    # A user's read body comes from MariaDB (GET_USER_BODY); a write's answer from Python
    # (user_document). Byte for byte the same, for any name the API accepts and either kind of
    # stats row: a client must not see a user change shape with the path its read took.
    names = [("Ada", "Lovelace"), ('Quote " and \\', "</script>"), ("Zoë 日本 😀", "A\u2028Ω")]
    users = [api.create_user(name, second) for name, second in names]
    posted = users[0]["id"]
    assert api.post(f"/api/users/{posted}/posts", json={"body": "hello"}).status_code == 201
    stats = "SELECT COUNT(*) FROM user_stats WHERE user_id = %s AND post_count = 1"
    eventually(lambda: dbs.scalar("primary", stats, posted) == 1, timeout=15, interval=0.1)
    conn = dbs.connect("primary", as_app=True)
    try:
        for user in users:
            row = user_rows.find_user(conn=conn, user_id=user["id"])
            assert row is not None
            want = json_bytes(user_document(row))
            assert user_rows.find_user_body(conn=conn, user_id=user["id"]) == want
        assert json.loads(want)["last_post_at"] is None
        first = user_rows.find_user_body(conn=conn, user_id=posted)
        assert first is not None
        assert json.loads(first)["post_count"] == 1
        assert json.loads(first)["last_post_at"].endswith("Z")
        assert user_rows.find_user_body(conn=conn, user_id=MISSING) is None
    finally:
        conn.close()
    # Through the API: the PATCH's answer (Python) and the read that follows it (the database,
    # the write's tombstone making it load) are the same bytes.
    patched = api.patch(f"/api/users/{users[1]['id']}", json={"name": "Grace 'Amazing'"})
    assert patched.status_code == 200
    assert api.get(f"/api/users/{users[1]['id']}").content == patched.content


def test_a_row_the_api_would_refuse_is_still_rendered_as_valid_json(
    api: Api, dbs: Databases
) -> None:
    # A name written past the API (DBeaver, the mysql CLI) may hold a control character: MariaDB
    # escapes it in upper-case hex (\u000B) where Python writes lower case. Same JSON value.
    user_id = api.create_user("Ctl", "Row")["id"]
    dbs.query("primary", "UPDATE users SET name = %s WHERE id = %s", "a\x0bb\x01", user_id)
    conn = dbs.connect("primary", as_app=True)
    try:
        row = user_rows.find_user(conn=conn, user_id=user_id)
        body = user_rows.find_user_body(conn=conn, user_id=user_id)
    finally:
        conn.close()
    assert row is not None
    assert body is not None
    assert json.loads(body) == user_document(row)
    assert json.loads(body)["name"] == "a\x0bb\x01"
