"""The per-request context: a write's deadline starts with its request and ends with it."""

from __future__ import annotations

from flask import request

from app.resilience import deadline
from tests.unit.conftest import make_app


def test_a_writes_deadline_starts_with_its_request_and_ends_with_it() -> None:
    app = make_app(writes_need_api_key=False, db_write_deadline_s=2.5)
    seen: dict[str, float | None] = {}

    @app.route("/probe", methods=["GET", "POST"])
    def probe() -> str:
        seen[request.method] = deadline.left()
        return "seen"

    client = app.test_client()
    assert client.post("/probe").status_code == 200
    assert client.get("/probe").status_code == 200
    post_left = seen["POST"]
    assert post_left is not None
    assert 2.0 < post_left <= 2.5  # the key check, before the route, counted against it too
    assert seen["GET"] is None  # reads have their own bound per round trip
    assert deadline.left() is None
