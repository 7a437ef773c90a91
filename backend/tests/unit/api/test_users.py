"""Routes of /api/users without a database: answers decided before any data is asked for."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

TOO_LARGE = "9223372036854775808"  # one past the largest BIGINT


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/api/users/{TOO_LARGE}", None),
        ("PATCH", f"/api/users/{TOO_LARGE}", {"name": "New"}),
        ("DELETE", f"/api/users/{TOO_LARGE}", None),
        ("GET", f"/api/users/{TOO_LARGE}/posts", None),
        ("POST", f"/api/users/{TOO_LARGE}/posts", {"body": "hello"}),
        ("GET", f"/api/users/{'9' * 20_000}", None),
    ],
)
def test_every_method_on_an_id_no_bigint_holds_is_a_404_problem(
    client: FlaskClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = client.open(path, method=method, json=body)
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.json is not None
    assert response.json["detail"].endswith("does not exist.")
    assert "Allow" not in response.headers


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/users", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/api/users/5", {"GET", "HEAD", "PATCH", "DELETE", "OPTIONS"}),
    ],
)
def test_options_answers_204_with_the_allowed_methods_and_no_body(
    client: FlaskClient, path: str, allowed: set[str]
) -> None:
    response = client.options(path)
    assert (response.status_code, response.data) == (204, b"")
    assert set(response.headers["Allow"].split(", ")) == allowed
    assert "Content-Type" not in response.headers


@pytest.mark.parametrize("path", ["//api/users", "/api//users", "/api/users//5"])
def test_doubled_slashes_are_a_404_problem_not_a_redirect(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.content_type) == (404, "application/problem+json")
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "body", "cache_control"),
    [
        ("GET", "/healthz", None, "no-cache"),
        ("GET", "/openapi.json", None, "no-cache"),
        ("GET", f"/api/users/{TOO_LARGE}", None, "no-store"),
        ("POST", "/api/users", {"name": ""}, "no-store"),
        ("OPTIONS", "/api/users", None, "no-store"),
    ],
)
def test_reads_may_be_kept_but_asked_again_and_nothing_else_is_kept(
    client: FlaskClient, method: str, path: str, body: object, cache_control: str
) -> None:
    response = client.open(path, method=method, json=body)
    assert response.headers["Cache-Control"] == cache_control
