"""Every request counted and timed by its route pattern (app.metrics holds the metrics)."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, request

from app.metrics import LATENCY, REQUESTS


def init_app(app: Flask) -> None:
    """Count and time every request by its route pattern (never by id, to bound cardinality)."""

    # The labelled children, looked up once per route, method and status (labels() takes a lock
    # and builds its key on every call).
    children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        rule, method, status = request.url_rule, request.method, response.status_code
        route = rule.rule if rule else "unmatched"
        child = children.get((route, method, status))
        if child is None:
            child = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
            children[(route, method, status)] = child
        child[0].inc()
        child[1].observe(time.perf_counter() - g.get("started", time.perf_counter()))
        return response
