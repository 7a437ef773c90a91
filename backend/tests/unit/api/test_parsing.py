"""Bad input gets a clear 4xx problem+json naming what is wrong, before any database work."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

LONG = "x" * 65
BAD_REQUESTS = [
    # (method, path, body or raw, status, field named in errors or None)
    ("POST", "/api/users", {"second_name": "L"}, 422, "name"),
    ("POST", "/api/users", {"name": "Ada"}, 422, "second_name"),
    ("POST", "/api/users", {"name": 1, "second_name": "L"}, 422, "name"),
    ("POST", "/api/users", {"name": LONG, "second_name": "L"}, 422, "name"),
    ("POST", "/api/users", {"name": "   ", "second_name": "L"}, 422, "name"),
    # Names are stored as sent: never trimmed, no controls, no bidirectional overrides.
    ("POST", "/api/users", {"name": "a" + " " * 70, "second_name": "L"}, 422, "name"),
    ("POST", "/api/users", {"name": "Ada ", "second_name": "L"}, 422, "name"),
    ("POST", "/api/users", {"name": "Ada\n", "second_name": "L"}, 422, "name"),
    ("POST", "/api/users", {"name": "A\u0000b", "second_name": "L"}, 422, "name"),
    ("POST", "/api/users", {"name": "A", "second_name": "L\u202eR"}, 422, "second_name"),
    ("PATCH", "/api/users/1", {"second_name": "\tL"}, 422, "second_name"),
    ("POST", "/api/users", {"name": "A", "second_name": "L", "admin": True}, 422, "admin"),
    ("POST", "/api/users", ["Ada", "Lovelace"], 422, None),
    ("POST", "/api/users", b'{"name": "Ada",', 400, None),
    # Nested past the parser's recursion limit (was a 500), and just past the documented bound.
    ("POST", "/api/users", b"[" * 1000 + b"]" * 1000, 400, None),
    ("PATCH", "/api/users/1", b'{"a":' * 600 + b"1" + b"}" * 600, 400, None),
    ("POST", "/api/users/1/posts", b"[" * 1000 + b"]" * 1000, 400, None),
    ("POST", "/api/users", b'{"name": ' + b"[" * 33 + b"]" * 33 + b"}", 400, None),
    ("PATCH", "/api/users/1", {}, 422, None),
    ("PATCH", "/api/users/1", {"name": None}, 422, "name"),
    ("PATCH", "/api/users/1", {"second_name": ["x"]}, 422, "second_name"),
    ("POST", "/api/users/1/posts", {"body": ""}, 422, "body"),
    ("POST", "/api/users/1/posts", {"body": "x" * 281}, 422, "body"),
    ("POST", "/api/users/1/posts", {"text": "hi"}, 422, "body"),
    ("GET", "/api/users?limit=0", None, 422, "limit"),
    ("GET", "/api/users?limit=101", None, 422, "limit"),
    ("GET", "/api/users?limit=ten", None, 422, "limit"),
    ("GET", "/api/users?after=-1", None, 422, "after"),
    ("GET", "/api/users?sort=name", None, 422, "sort"),
    ("GET", "/api/users/1/posts?before=0", None, 422, "before"),
    ("PUT", "/api/users/1", {"name": "A"}, 405, None),
    ("DELETE", "/api/users", None, 405, None),
    ("GET", "/api/users/abc", None, 404, None),
    # ASCII digits only: other scripts' digits, fullwidth digits, underscores, signs, spaces.
    ("GET", "/api/users/\u0668\u0660\u0665", None, 404, None),
    ("GET", "/api/users/\uff18\uff10\uff15", None, 404, None),
    ("GET", "/api/users?limit=5_0", None, 422, "limit"),
    ("GET", "/api/users?limit=+5", None, 422, "limit"),
    ("GET", "/api/users?limit=%205", None, 422, "limit"),
    ("GET", "/api/users?after=\u0668", None, 422, "after"),
    ("GET", "/api/users/1/posts?before=1_0", None, 422, "before"),
    ("GET", "/api/users/99999999999999999999", None, 404, None),
    # One spelling of an id: a leading zero names no user (and no edge copy a purge misses).
    ("GET", "/api/users/007", None, 404, None),
    ("GET", "/api/users/01000160/posts", None, 404, None),
    ("PATCH", "/api/users/01", {"name": "A"}, 404, None),
    # A post holds no NUL, other control or bidirectional override (line breaks are text).
    ("POST", "/api/users/1/posts", {"body": "a\u0000b"}, 422, "body"),
    ("POST", "/api/users/1/posts", {"body": "evil\u202etxt.exe"}, 422, "body"),
    ("POST", "/api/users/1/posts", {"body": "bell\u0007"}, 422, "body"),
    # A key named twice: which one wins is no client's intent.
    ("PATCH", "/api/users/1", b'{"name": "A", "name": "B"}', 400, None),
    ("POST", "/api/users", b'{"name": "A", "second_name": "B", "name": "C"}', 400, None),
    ("GET", "/api/nothing-here", None, 404, None),
]


def send(client: FlaskClient, method: str, path: str, body: Any) -> Any:
    if isinstance(body, bytes):
        return client.open(path, method=method, data=body, content_type="application/json")
    if body is None:
        return client.open(path, method=method)
    return client.open(path, method=method, json=body)


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), BAD_REQUESTS)
def test_bad_input_gets_a_problem_document(
    client: FlaskClient, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    response = send(client, method, path, body)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = response.get_json(force=True)
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    assert problem["type"]
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]]
    assert response.headers["X-DB-Node"] == "none"


def test_a_body_that_is_not_json_is_unsupported(client: FlaskClient) -> None:
    response = client.post(
        "/api/users", data="name=Ada", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"


def test_a_body_over_the_limit_is_refused(client: FlaskClient) -> None:
    response = client.post("/api/users", json={"name": "A" * 5000, "second_name": "L"})
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_method_not_allowed_lists_the_allowed_methods(client: FlaskClient) -> None:
    allowed = client.put("/api/users/1", json={}).headers["Allow"]
    assert {"GET", "PATCH", "DELETE"} <= {m.strip() for m in allowed.split(",")}


def test_every_response_names_the_replica_and_request(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "abc-123"
    assert response.headers["X-Served-By"] == "api-test"
    assert response.headers["X-Cache"] == "BYPASS"


def test_a_request_id_is_generated_when_none_is_sent(client: FlaskClient) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert first
    assert second
    assert first != second


def test_an_unreachable_database_is_a_503_with_retry_after(client: FlaskClient) -> None:
    response = client.get("/api/users/1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.mimetype == "application/problem+json"
