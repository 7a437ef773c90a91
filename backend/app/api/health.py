"""Liveness (/healthz: this process only), readiness (/readyz: every dependency) and /metrics."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from redis import Redis

from app import metrics
from app.api.data import json_response, router
from app.db.errors import error_code
from app.db.replicas import ask_primary, observe
from app.db.routing import PRIMARY
from app.resilience.breaker import CircuitBreaker, State
from app.resilience.ratelimit import RateLimiter

bp = Blueprint("health", __name__)
PROBE = (
    "INSERT INTO probes (api, ts) VALUES (%s, UTC_TIMESTAMP(6)) "
    "ON DUPLICATE KEY UPDATE ts = VALUES(ts)"
)
OPEN_STATES = {State.OPEN.value, f"forced_{State.OPEN.value}"}  # half-open lets probes through
READ_ONLY = 1290  # ER_OPTION_PREVENTS_STATEMENT: the server runs with read_only
# Database states in which a node still serves reads.
READABLE = {"ok", "ejected", "stopped", "read_only"}
NOT_DATABASES = {"redis", "heartbeat"}


def timed(check: dict[str, Any], started: float) -> dict[str, Any]:
    """CHECK with its latency in ms."""
    return {**check, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def breakers() -> dict[str, CircuitBreaker]:
    """This worker's breakers by name."""
    by_name: dict[str, CircuitBreaker] = current_app.extensions["breakers"]
    return by_name


def breaker_state(name: str) -> str:
    """The state of NAME's breaker in this worker, marked when an operator forced it."""
    breaker = breakers()[name]
    return f"forced_{breaker.state.value}" if breaker.forced else breaker.state.value


def with_breaker(check: dict[str, Any], name: str) -> dict[str, Any]:
    """CHECK plus the node's breaker; a node that answers but whose breaker is open is unused."""
    state = breaker_state(name)
    if check["status"] == "ok" and state in OPEN_STATES:
        check = {**check, "status": "breaker_open"}
    return {**check, "breaker": state}


def check_primary() -> dict[str, Any]:
    """The primary's write path: a real write (this replica's row in probes), committed."""
    started = time.perf_counter()
    api = current_app.extensions["settings"].api_name[:64]
    try:
        with router().nodes.writer.begin() as conn:
            conn.exec_driver_sql(PROBE, (api,))
    except Exception as error:  # any failure of a dependency is a finding, not a crash
        status = "read_only" if error_code(error) == READ_ONLY else "down"
        check = {"status": status, "breaker": breaker_state(PRIMARY), "error": type(error).__name__}
        return timed(check, started)
    return timed(with_breaker({"status": "ok"}, PRIMARY), started)


def check_replica(name: str) -> dict[str, Any]:
    """A live look at one replica, next to what the router currently thinks of it."""
    started = time.perf_counter()
    monitor, engine = router().monitor, router().nodes.readers[name]
    seen = monitor.second_opinion(name, observe(engine), engine)  # the lag the router acts on
    state = monitor.states[name]
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
    return timed(with_breaker(check, name), started)


def check_heartbeat() -> dict[str, Any]:
    """The heartbeat writer: the age of its row on the primary. While it has stalled, replica
    lag is measured by GTID instead (app.db.replicas), so this degrades nothing but is named."""
    started = time.perf_counter()
    primary = ask_primary(router().nodes.readers[PRIMARY])
    if primary is None or primary.heartbeat_age is None:
        return timed({"status": "unknown", "age_s": None}, started)
    age, limit = primary.heartbeat_age, router().monitor.policy.eject_above_s
    return timed({"status": "ok" if age <= limit else "stalled", "age_s": age}, started)


def check_redis() -> dict[str, Any]:
    """Redis answers PING; this process's breaker around it; while it is down, the plan each
    rate-limit tier follows (docs/security.md)."""
    started = time.perf_counter()
    client: Redis = current_app.extensions["redis"]
    breaker = breaker_state("redis")
    try:
        client.ping()
    except Exception as error:  # any failure of a dependency is a finding, not a crash
        limiter: RateLimiter = current_app.extensions["rate_limiter"]
        check = {"status": "down", "breaker": breaker, "error": type(error).__name__}
        return timed({**check, "rate_limits_without_redis": limiter.redis_down}, started)
    return timed({"status": "ok", "breaker": breaker}, started)


@bp.get("/healthz")
def healthz() -> Response:
    """This process is alive; calls no dependency."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready while reads can be served (writes need the primary); what is not ok is named.

    A down primary makes the service degraded, not unready: reads go on from the replicas and
    the cache, and taking every API replica out of a load balancer would stop those too.
    """
    checks = {"primary": check_primary()}
    for name in router().replica_names:
        checks[name] = check_replica(name)
    checks["heartbeat"] = check_heartbeat()
    checks["redis"] = check_redis()
    degraded = sorted(name for name, check in checks.items() if check["status"] != "ok")
    readable = [n for n, c in checks.items() if n not in NOT_DATABASES and c["status"] in READABLE]
    status = "unavailable" if not readable else ("degraded" if degraded else "ok")
    body = {"status": status, "degraded": degraded, "writable": "primary" not in degraded}
    return jsonify(**body, checks=checks), 200 if readable else 503


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    """Prometheus text format."""
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
