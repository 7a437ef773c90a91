"""The naive peer: what a user would build instead of this stack, as `make bench`'s baseline.

The tutorial stack, written the way the tutorials write it, on purpose: Flask + SQLAlchemy with
its default pool, reads on one replica, writes on the primary, and cache-aside in Redis done the
obvious way (GET; on a miss read the replica, SETEX; a write DELETEs the key). No near cache, no
stampede lock, no tombstones, no read-your-writes, no rate limits, no metrics, no breakers.
`make bench` runs it under gunicorn (sync workers, as many as the stack has) behind an nginx of
its own with a plain proxy config, on its own ports, against the same data and the same replica,
and reports the stack's numbers divided by this peer's.

Routes: /ping (the bare floor); /api/users/{id} and /api/users/{id}/posts with cache-aside;
/nocache/users/{id} and /nocache/users/{id}/posts, the same reads with no cache at all;
/api/users?limit=&after= (a list, never cached); PATCH /api/users/{id}.

Settings (environment): PEER_PRIMARY_URL, PEER_REPLICA_URL (SQLAlchemy URLs), PEER_REDIS_URL,
PEER_CACHE_TTL_S (60).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from flask import Flask, jsonify, request
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

USER = "SELECT id, name, second_name, created_at, updated_at FROM users WHERE id = :id"
POSTS = (
    "SELECT id, user_id, body, created_at FROM posts WHERE user_id = :id "
    "ORDER BY id DESC LIMIT :limit"
)
USERS = (
    "SELECT id, name, second_name, created_at, updated_at FROM users WHERE id > :after "
    "ORDER BY id LIMIT :limit"
)


def document(row: Any) -> dict[str, Any]:
    """A row as JSON-ready values (timestamps in ISO 8601)."""
    return {
        k: (v.isoformat() + "Z" if isinstance(v, datetime) else v) for k, v in row._mapping.items()
    }


def create_app() -> Flask:
    """The peer's app, configured from the environment."""
    app = Flask(__name__)
    primary: Engine = create_engine(os.environ["PEER_PRIMARY_URL"])
    replica: Engine = create_engine(os.environ["PEER_REPLICA_URL"])
    cache = Redis.from_url(os.environ["PEER_REDIS_URL"])
    ttl_s = int(os.environ.get("PEER_CACHE_TTL_S", "60"))

    def read_user(user_id: int) -> tuple[dict[str, Any] | None, int]:
        with replica.connect() as conn:
            row = conn.execute(text(USER), {"id": user_id}).first()
        return (document(row), 200) if row else (None, 404)

    def read_posts(user_id: int) -> tuple[dict[str, Any], int]:
        with replica.connect() as conn:
            rows = conn.execute(text(POSTS), {"id": user_id, "limit": 20}).all()
        return {"items": [document(r) for r in rows]}, 200

    def cache_aside(key: str, load: Any) -> Any:
        cached = cache.get(key)
        if cached is not None:
            return jsonify(json.loads(cached))
        value, status = load()
        if status != 200:
            return jsonify(error="not found"), status
        cache.setex(key, ttl_s, json.dumps(value))
        return jsonify(value)

    @app.get("/ping")
    def ping() -> Any:
        return jsonify(status="ok")

    @app.get("/api/users/<int:user_id>")
    def get_user(user_id: int) -> Any:
        return cache_aside(f"peer:user:{user_id}", lambda: read_user(user_id))

    @app.get("/api/users/<int:user_id>/posts")
    def get_posts(user_id: int) -> Any:
        return cache_aside(f"peer:posts:{user_id}", lambda: read_posts(user_id))

    @app.get("/nocache/users/<int:user_id>")
    def get_user_uncached(user_id: int) -> Any:
        value, status = read_user(user_id)
        return (jsonify(value), 200) if value else (jsonify(error="not found"), status)

    @app.get("/nocache/users/<int:user_id>/posts")
    def get_posts_uncached(user_id: int) -> Any:
        value, status = read_posts(user_id)
        return jsonify(value), status

    @app.get("/api/users")
    def list_users() -> Any:
        limit = int(request.args.get("limit", 20))
        after = int(request.args.get("after", 0))
        with replica.connect() as conn:
            rows = conn.execute(text(USERS), {"after": after, "limit": limit}).all()
        return jsonify(items=[document(r) for r in rows])

    @app.patch("/api/users/<int:user_id>")
    def patch_user(user_id: int) -> Any:
        changes = {
            k: v for k, v in (request.get_json() or {}).items() if k in ("name", "second_name")
        }
        with primary.begin() as conn:
            for column, value in changes.items():
                conn.execute(
                    text(f"UPDATE users SET {column} = :v WHERE id = :id"),  # noqa: S608 (column from a fixed list)
                    {"v": value, "id": user_id},
                )
            row = conn.execute(text(USER), {"id": user_id}).first()
        cache.delete(f"peer:user:{user_id}")
        return (jsonify(document(row)), 200) if row else (jsonify(error="not found"), 404)

    return app
