"""The OpenAPI document covers every route the app serves, with the models that validate input."""

from __future__ import annotations

import re
from datetime import datetime

from flask import Flask
from flask.testing import FlaskClient

from app.schemas import Post, User, post_document, user_document


def documented(client: FlaskClient) -> dict[str, set[str]]:
    document = client.get("/openapi.json").get_json()
    return {
        path: {m.upper() for m in item if m != "parameters"}
        for path, item in document["paths"].items()
    }


def test_every_route_is_documented_with_its_methods(app: Flask, client: FlaskClient) -> None:
    paths = documented(client)
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "openapi.openapi"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        methods = rule.methods - {"HEAD", "OPTIONS"}  # type: ignore[operator]
        assert methods <= paths.get(path, set()), f"{path} {methods} not documented"


def test_every_documented_path_and_method_is_a_route(app: Flask, client: FlaskClient) -> None:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(rule.methods - {"HEAD", "OPTIONS"})  # type: ignore[operator]
    for path, methods in documented(client).items():
        assert methods <= routes.get(path, set()), f"{path} {methods} documented, not routed"


def test_the_answers_documents_are_the_published_models() -> None:
    """user_document and post_document write exactly the fields of the models whose schemas the
    document publishes, each valid against it."""
    at = datetime(2026, 12, 7, 1, 2, 3, 456789)
    user = user_document(
        {"id": 1, "name": "A", "second_name": "B", "created_at": at, "updated_at": at}
    )
    assert set(user) == set(User.model_fields)
    User.model_validate(user)
    post = post_document({"id": 2, "user_id": 1, "body": "x", "created_at": at})
    assert set(post) == set(Post.model_fields)
    Post.model_validate(post)


def test_request_bodies_refuse_unknown_fields_and_bound_lengths(client: FlaskClient) -> None:
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert schemas["UserCreate"]["additionalProperties"] is False
    assert schemas["UserCreate"]["properties"]["name"]["maxLength"] == 64
    assert schemas["PostCreate"]["properties"]["body"]["maxLength"] == 280
    assert schemas["UserPatch"]["minProperties"] == 1
    assert "required" not in schemas["UserPatch"]


def test_every_error_is_a_problem_document(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    for item in document["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and "content" in response:
                    assert "application/problem+json" in response["content"]


def test_every_operation_declares_what_nginx_itself_may_answer(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert {"400", "414", "431", "502", "504"} <= set(operation["responses"]), path
            if path.startswith("/api/"):
                assert {"401", "403", "429", "503"} <= set(operation["responses"]), path
            if path.startswith("/api/users/{user_id}"):
                assert "404" in operation["responses"], path
