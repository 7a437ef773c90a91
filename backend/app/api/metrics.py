"""Every request counted and timed by its route pattern (app.metrics holds the metrics)."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from app.metrics import LATENCY, REQUESTS, child


def init_app(app: Flask) -> None:
    """Count and time every request by its route pattern (never by id, to bound cardinality)."""

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        rule = request.url_rule
        route = rule.rule if rule else "unmatched"
        child(REQUESTS, route, request.method, str(response.status_code)).inc()
        child(LATENCY, route).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        return response
