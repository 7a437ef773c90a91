"""Liveness (/healthz: this process only), readiness (/readyz: every dependency) and /metrics."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from redis import Redis
from sqlalchemy import text

from app import metrics
from app.api.data import cache, router
from app.db.replicas import observe
from app.db.routing import PRIMARY

bp = Blueprint("health", __name__)


def timed(check: dict[str, Any], started: float) -> dict[str, Any]:
    """CHECK with its latency in ms."""
    return {**check, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def check_primary() -> dict[str, Any]:
    """The primary accepts connections and is writable."""
    started = time.perf_counter()
    try:
        with router().nodes.readers[PRIMARY].connect() as conn:
            read_only = conn.execute(text("SELECT @@global.read_only")).scalar()
    except Exception as error:  # any failure of a dependency is a finding, not a crash
        return timed({"status": "down", "error": type(error).__name__}, started)
    return timed({"status": "read_only" if read_only else "ok"}, started)


def check_replica(name: str) -> dict[str, Any]:
    """A live look at one replica, next to what the router currently thinks of it."""
    started = time.perf_counter()
    seen = observe(router().nodes.readers[name])
    state = router().monitor.states[name]
    if not seen.reachable:
        status = "down"
    elif not seen.replicating:
        status = "stopped"
    else:
        status = "ok" if state.admitted else "ejected"
    check = {
        "status": status,
        "admitted": state.admitted,
        "lag_s": seen.lag_s,
        "reason": seen.problem or state.reason,
    }
    return timed(check, started)


def check_redis() -> dict[str, Any]:
    """Redis answers PING; the state of this process's breaker around it."""
    started = time.perf_counter()
    client: Redis = current_app.extensions["redis"]
    breaker = cache().breaker.state.value
    try:
        client.ping()
    except Exception as error:  # any failure of a dependency is a finding, not a crash
        return timed({"status": "down", "breaker": breaker, "error": type(error).__name__}, started)
    return timed({"status": "ok", "breaker": breaker}, started)


@bp.get("/healthz")
def healthz() -> Response:
    """This process is alive; calls no dependency."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready while the primary takes writes; anything else that is not ok is named as degraded."""
    checks = {"primary": check_primary()}
    for name in router().replica_names:
        checks[name] = check_replica(name)
    checks["redis"] = check_redis()
    degraded = sorted(name for name, check in checks.items() if check["status"] != "ok")
    ready = checks["primary"]["status"] == "ok"
    status = "unavailable" if not ready else ("degraded" if degraded else "ok")
    return jsonify(status=status, degraded=degraded, checks=checks), 200 if ready else 503


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    """Prometheus text format."""
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
