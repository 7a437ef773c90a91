"""GET /openapi.json: the OpenAPI 3.1 document of every endpoint, built from the same models.

Request bodies, query parameters and response documents are the pydantic models of
app/schemas.py (those that validate requests, and those the answers' documents are tested
against), so the document cannot disagree with what the API accepts or answers. Which paths and
methods exist is tested against the routes (tests/unit/api/test_openapi.py), both ways.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel

from app.models import BIGINT_MAX
from app.schemas import Post, PostCreate, PostPage, User, UserCreate, UserPage, UserPatch

bp = Blueprint("openapi", __name__)
REF = "#/components/schemas/{model}"
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def page_of(item: str) -> dict[str, Any]:
    """A keyset page of ITEM."""
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": REF.format(model=item)}},
            "next": {"type": ["string", "null"]},
        },
    }


def request_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of MODEL: what pydantic validates a request against, or what an answer's
    document is (tested)."""
    return model.model_json_schema(ref_template=REF)


def patch_schema() -> dict[str, Any]:
    """UserPatch: the fields of UserCreate, any of them, at least one, never null."""
    schema = request_schema(UserCreate)
    del schema["required"]
    return {**schema, "title": UserPatch.__name__, "minProperties": 1}


DESCRIBED = {
    400: "Malformed JSON, consistency token or Idempotency-Key (or, at nginx, a malformed request)",
    401: "Missing (on a write), malformed or unknown X-API-Key",
    403: "Revoked X-API-Key",
    404: "Unknown id (any id over the largest BIGINT too)",
    409: "Same Idempotency-Key still in progress",
    405: "Method not allowed",
    413: "Body too large",
    414: "Request line too long (nginx)",
    415: "Body is not JSON",
    422: "Invalid field or query parameter",
    429: "Over the rate limit of the key's tier (or, at nginx, of the client address)",
    431: "Request headers too large (nginx)",
    502: "No API replica gave an answer (nginx); retry after Retry-After",
    503: "Database or rate limiter unavailable; retry after Retry-After",
    504: "No API replica answered in time (nginx); retry after Retry-After",
}
# What nginx itself may answer to any request before (or instead of) the API.
EDGE_ERRORS = (400, 414, 431, 502, 504)


def problems(*statuses: int, api: bool = True) -> dict[str, Any]:
    """Problem responses for STATUSES and nginx's own; for /api routes (API), also the key
    errors any of them may meet and the 503 every database-backed route may answer."""
    content = {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}
    every = (*statuses, *EDGE_ERRORS, *((*ACCESS_ERRORS, 503) if api else ()))
    return {str(s): {"description": DESCRIBED[s], "content": content} for s in sorted(set(every))}


def internal_only() -> dict[str, Any]:
    """nginx's own errors, and the 404 its public listener answers for an internal path."""
    responses = problems(404, api=False)
    responses["404"] = {**responses["404"], "description": "Asked on nginx's public listener"}
    return responses


def ok(status: int, model: str | None, description: str) -> dict[str, Any]:
    """A success response with the schema MODEL (None: no body)."""
    response: dict[str, Any] = {"description": description}
    if model:
        response["content"] = {"application/json": {"schema": {"$ref": REF.format(model=model)}}}
    return {str(status): response}


def body(model: str) -> dict[str, Any]:
    """A required JSON request body."""
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
    }


def query(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The optional query parameters MODEL validates (a missing one takes its default)."""
    found = []
    for name, prop in model.model_json_schema()["properties"].items():
        # "limit: int = 20" or "before: int | None = None": the integer's own schema.
        branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
        schema = {k: v for k, v in branches[0].items() if k != "title"}
        if prop.get("default") is not None:
            schema["default"] = prop["default"]
        found.append({"name": name, "in": "query", "required": False, "schema": schema})
    return found


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retry with the same key gets the first answer and writes nothing.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[\\x20-\\x7e]+$"},
}
USER_ID = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX},
}
WRITE_ERRORS = (400, 413, 415, 422)
# Any /api request may send a key, so any may meet these.
ACCESS_ERRORS = (401, 403, 429)
# Writes need a key; reads may send one (for their tier's limits) or none (anonymous).
KEY_REQUIRED: list[dict[str, list[str]]] = [{"ApiKey": []}]
KEY_OPTIONAL: list[dict[str, list[str]]] = [{}, {"ApiKey": []}]
API_KEY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "X-API-Key",
    "description": "zk_<key id>_<secret>, from `make key`. Tiers: critical, standard.",
}


def paths() -> dict[str, Any]:
    """Every endpoint and what it may answer."""
    return {
        "/healthz": {
            "get": {
                "summary": "This process is alive",
                "responses": {**ok(200, None, "ok"), **problems(api=False)},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Every dependency, with latency (nginx's internal listener only)",
                "responses": {
                    **internal_only(),
                    **ok(200, None, "ready"),
                    **ok(503, None, "not ready"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus text format (nginx's internal listener only)",
                "responses": {**ok(200, None, "metrics"), **internal_only()},
            }
        },
        "/api/users": {
            "post": {
                "summary": "Create a user",
                "security": KEY_REQUIRED,
                "requestBody": body("UserCreate"),
                "parameters": [IDEMPOTENCY_KEY],
                "responses": {**ok(201, "User", "created"), **problems(409, *WRITE_ERRORS)},
            },
            "get": {
                "summary": "Users by ascending id, a keyset page at a time",
                "security": KEY_OPTIONAL,
                "parameters": query(UserPage),
                "responses": {**ok(200, "UserPage", "a page"), **problems(422)},
            },
        },
        "/api/users/{user_id}": {
            "parameters": [USER_ID],
            "get": {
                "summary": "One user (cached)",
                "security": KEY_OPTIONAL,
                "responses": {**ok(200, "User", "the user"), **problems(400, 404)},
            },
            "patch": {
                "summary": "Change some fields",
                "security": KEY_REQUIRED,
                "requestBody": body("UserPatch"),
                "parameters": [IDEMPOTENCY_KEY],
                "responses": {
                    **ok(200, "User", "the user"),
                    **problems(404, 409, *WRITE_ERRORS),
                },
            },
            "delete": {
                "summary": "Delete the user and their posts",
                "security": KEY_REQUIRED,
                "parameters": [IDEMPOTENCY_KEY],
                "responses": {**ok(204, None, "deleted"), **problems(400, 404, 409, 422)},
            },
        },
        "/api/users/{user_id}/posts": {
            "parameters": [USER_ID],
            "post": {
                "summary": "Add a post",
                "security": KEY_REQUIRED,
                "requestBody": body("PostCreate"),
                "parameters": [IDEMPOTENCY_KEY],
                "responses": {**ok(201, "Post", "created"), **problems(404, 409, *WRITE_ERRORS)},
            },
            "get": {
                "summary": "Posts, newest first, a keyset page at a time",
                "security": KEY_OPTIONAL,
                "parameters": query(PostPage),
                "responses": {**ok(200, "PostPage", "a page"), **problems(404, 422)},
            },
        },
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Zero to Million API",
            "version": "1.0.0",
            "description": "Users and posts behind nginx, MariaDB replicas and Redis.",
        },
        "paths": paths(),
        "components": {
            "schemas": {
                "UserCreate": request_schema(UserCreate),
                "UserPatch": patch_schema(),
                "PostCreate": request_schema(PostCreate),
                "User": request_schema(User),
                "Post": request_schema(Post),
                "UserPage": page_of("User"),
                "PostPage": page_of("Post"),
                "Problem": PROBLEM,
            },
            "securitySchemes": {"ApiKey": API_KEY_SCHEME},
        },
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document."""
    return jsonify(document())
