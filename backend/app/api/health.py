"""Liveness (/healthz: this process only) and readiness (/readyz: every dependency, measured)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from redis import Redis
from sqlalchemy import text

from app.api.context import router

bp = Blueprint("health", __name__)


def probe(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one dependency check: its findings, status ok/down and latency in ms."""
    started = time.perf_counter()
    try:
        result = {"status": "ok", **check()}
    except Exception as error:  # any failure of a dependency is a finding, not a crash
        result = {"status": "down", "error": f"{type(error).__name__}: {error}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def check_primary() -> dict[str, Any]:
    """The primary accepts connections and is writable."""
    with router().engines["primary"].connect() as conn:
        read_only = conn.execute(text("SELECT @@global.read_only")).scalar()
    if read_only:
        raise RuntimeError("primary is read-only")
    return {}


def check_replica(name: str) -> dict[str, Any]:
    """A replica answers, and both replication threads run; reports its lag."""
    with router().engines[name].connect() as conn:
        status = conn.execute(text("SHOW REPLICA STATUS")).mappings().first()
    if status is None:
        raise RuntimeError("not configured as a replica")
    io, sql = status["Slave_IO_Running"], status["Slave_SQL_Running"]
    if io != "Yes" or sql != "Yes":
        raise RuntimeError(f"replication stopped (io={io}, sql={sql})")
    return {"lag_s": status["Seconds_Behind_Master"]}


def check_redis() -> dict[str, Any]:
    """Redis answers PING."""
    client: Redis = current_app.extensions["redis"]
    client.ping()
    return {}


@bp.get("/healthz")
def healthz() -> Response:
    """This process is alive; calls no dependency."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the primary is up and reads have somewhere to go; degraded parts are named."""
    checks = {"primary": probe(check_primary)}
    for name in router().replica_names:
        checks[name] = probe(partial(check_replica, name))
    checks["redis"] = probe(check_redis)
    down = sorted(name for name, result in checks.items() if result["status"] != "ok")
    ready = "primary" not in down
    status = "ok" if not down else ("degraded" if ready else "unavailable")
    return jsonify(status=status, down=down, checks=checks), 200 if ready else 503
