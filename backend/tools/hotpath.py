"""`make profile`: what one request costs inside the API, measured in-process.

A tool of the backend (it imports the app), not a load test: it lives with the code it measures.

Builds the app with the running stack's settings and calls its WSGI entry directly (no HTTP, no
nginx, no gunicorn) for a bare Flask endpoint, /healthz, a cached GET and an uncached replica
read. Prints, per request, the Python function calls (counted by cProfile: the same on every
run, so a change to the hot path shows even on a noisy machine) and the best time of a few
rounds. A cached GET here is served by the worker's near cache after the first request.

For scale, a bare Flask app also serves the least a read can do: the uncached read's query on one
open PyMySQL connection to a replica, its rows as JSON, with no routing, pool, breaker, cache
check, metrics or headers. The difference to the API's uncached read is what those cost.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from stack.settings import REPO, load_stack

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
CALLS_SAMPLE = 200
TIMED = int(os.environ.get("PROFILE_REQUESTS", "400"))
ROUNDS = int(os.environ.get("PROFILE_ROUNDS", "5"))


def environ(path: str, query: str = "") -> dict[str, Any]:
    """A GET as nginx forwards it (a request id and one X-Forwarded-For hop)."""
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8080",
        "HTTP_X_FORWARDED_FOR": "127.0.0.1",
        "HTTP_X_REQUEST_ID": "profile",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def call(app: WsgiApp, path: str, query: str) -> tuple[str, bytes]:
    """One request through APP, its body read and closed as a server would: (status, body)."""
    statuses: list[str] = []
    body = app(environ(path, query), lambda status, headers, exc_info=None: statuses.append(status))
    content = b"".join(body)
    close = getattr(body, "close", None)
    if close is not None:
        close()
    return statuses[-1], content


def calls_per_request(app: WsgiApp, path: str, query: str) -> float:
    """Python function calls per request, counted by cProfile."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(CALLS_SAMPLE):
        call(app, path, query)
    profile.disable()
    return float(pstats.Stats(profile).total_calls) / CALLS_SAMPLE  # type: ignore[attr-defined]


def microseconds(app: WsgiApp, path: str, query: str) -> float:
    """Mean wall time per request of one round of TIMED requests."""
    started = time.perf_counter()
    for _ in range(TIMED):
        call(app, path, query)
    return (time.perf_counter() - started) / TIMED * 1e6


def build_apps() -> dict[str, WsgiApp]:
    """The API as configured for the running stack, and a bare Flask app for scale."""
    stack = load_stack()
    os.environ.update({**stack.api_env(), "API_NAME": "profile"})
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # in-process metrics registry
    sys.path.insert(0, str(REPO / "backend"))
    import pymysql
    from flask import Flask, Response, request

    from app.db.queries.users import LIST_USERS
    from app.processes.api import create_app

    node = (stack.replicas or [stack.primary])[0]
    connection = pymysql.connect(
        host=stack.host,
        port=node.port,
        user=stack.env["MYSQL_APP_USER"],
        password=stack.env["MYSQL_APP_PASSWORD"],
        database=stack.env["MYSQL_DATABASE"],
        autocommit=True,
        ssl_disabled=True,  # the stack's nodes have no TLS; PyMySQL would try it
    )

    def lean_read() -> Response:
        with connection.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute(LIST_USERS, (int(request.args["after"]), int(request.args["limit"])))
            rows = cursor.fetchall()
        body = json.dumps({"items": rows}, default=lambda value: value.isoformat())
        return Response(body, mimetype="application/json")

    bare = Flask("bare")
    bare.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
    bare.add_url_rule("/read", "read", lean_read)
    return {"bare": bare.wsgi_app, "api": create_app()}


def main() -> None:
    """Measure each request kind and print a table."""
    apps = build_apps()
    status, body = call(apps["api"], "/api/users", "limit=1")
    users = json.loads(body)["items"] if status.startswith("200") else []
    if not users:
        raise SystemExit(f"no user to read ({status}): seed some first (make seed)")
    first = int(users[0]["id"])
    cases = [
        ("bare Flask endpoint", apps["bare"], "/healthz", ""),
        ("bare Flask + one PyMySQL read", apps["bare"], "/read", f"limit=1&after={first - 1}"),
        ("/healthz", apps["api"], "/healthz", ""),
        ("cached GET /api/users/{id}", apps["api"], f"/api/users/{first}", ""),
        ("uncached replica read", apps["api"], "/api/users", f"limit=1&after={first - 1}"),
    ]
    for name, app, path, query in cases:  # warm: pools, near cache, imports
        for _ in range(50):
            status, _ = call(app, path, query)
            if not status.startswith("200"):
                raise SystemExit(f"{name}: {path}?{query} answered {status}")
    best = {name: float("inf") for name, *_ in cases}
    for _ in range(ROUNDS):  # interleaved, so a slow moment of the machine hits every case
        for name, app, path, query in cases:
            best[name] = min(best[name], microseconds(app, path, query))
    print(f"{'request':<30} {'calls':>7} {'µs (best of ' + str(ROUNDS) + ')':>18}")
    for name, app, path, query in cases:
        print(f"{name:<30} {calls_per_request(app, path, query):>7.0f} {best[name]:>18.0f}")


if __name__ == "__main__":
    main()
