"""Database and cache access from a request: units of work, invalidation, tokens, cached reads.

This is where HTTP meets the routing and cache layers: it records the node that served the data
(X-Db-Node) and the cache outcome (X-Cache), and turns a committed write into tombstones for the
cache keys it touched plus a read-your-writes token for the client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Response, current_app, g
from sqlalchemy import Connection

from app import metrics
from app.api.context import issue_token, request_token
from app.api.problems import PROBLEM_JSON, Problem, problem_body
from app.cache import Cache, Outcome, Served
from app.db.consistency import Token, newest
from app.db.routing import DBAPI_ERRORS, Router
from app.resilience.bulkhead import Saturated
from app.resilience.retry import Retrier
from app.services.errors import NotFound

T = TypeVar("T")


def router() -> Router:
    """The app's database router."""
    db_router: Router = current_app.extensions["db_router"]
    return db_router


def retrier() -> Retrier:
    """This worker's retrier (and retry budget)."""
    worker_retrier: Retrier = current_app.extensions["retrier"]
    return worker_retrier


def cache() -> Cache:
    """The app's cache."""
    app_cache: Cache = current_app.extensions["cache"]
    return app_cache


@dataclass
class Write:
    """A write unit of work: its connection, and the cache keys whose answers it changes."""

    conn: Connection
    keys: list[str] = field(default_factory=list)

    def touches(self, *keys: str) -> None:
        """Declare cache keys to invalidate once the write has committed."""
        self.keys.extend(keys)


@contextmanager
def writing() -> Iterator[Write]:
    """A transaction on the primary; after commit, invalidate what it touched and issue a token."""
    with router().writer() as uow:
        g.db_node = uow.node
        unit = Write(uow.conn)
        yield unit
    invalidated = cache().invalidate(unit.keys, uow.gtid) if unit.keys else True
    if not invalidated:
        metrics.INVALIDATION_FAILURES.inc()
    if uow.gtid:
        # If Redis missed the invalidation, this client's next reads skip the cache.
        issue_token(Token(uow.gtid, skip_cache=not invalidated))


def write(action: Callable[[Write], T]) -> T:
    """Run ACTION in a write unit of work (see writing()) and return its result.

    The whole unit of work runs again after an error that proves it did not commit (deadlock,
    lock wait timeout, no connection made); a connection lost mid-way is not retried, since
    its COMMIT may have been applied. Idempotency keys make even that safe for the client.
    """

    def once() -> T:
        with writing() as unit:
            return action(unit)

    return retrier().run(once, kind="write", write=True)


def read(fetch: Callable[[Any], T], min_gtid: str | None = None) -> T:
    """Run FETCH on the node the router picks, honouring the client's token.

    Reads are safe to repeat: if a node's connection breaks mid-read, the read runs again, first
    on the same node: its pool was reset, so the retry gets a fresh connection (pooled
    connections die together when a server restarts or kills them, while the server itself may
    be fine; trying another node would meet its stale pool too). A node that fails a second
    time in one read is avoided for the rest of it; a node that is down fails at connect, and
    the router moves on by itself. 503 when the primary's read cap is full.
    """
    token = request_token()
    floor = newest(min_gtid, token.gtid if token else None)
    failures: dict[str, int] = {}  # node -> broken connections during this read

    def once() -> T:
        node = None
        again = next((name for name, count in failures.items() if count == 1), None)
        avoid = frozenset(name for name, count in failures.items() if count > 1)
        try:
            with router().reader(floor, avoid=avoid, prefer=again) as uow:
                g.db_node = node = uow.node
                metrics.DB_READS.labels(uow.node).inc()
                return fetch(uow.conn)
        except Saturated as error:
            detail = f"No replica can serve reads and the primary is at its cap: {error}."
            raise Problem(503, detail, headers={"Retry-After": "1"}) from error
        except DBAPI_ERRORS:
            if node is not None:
                failures[node] = failures.get(node, 0) + 1
            raise

    return retrier().run(once, kind="read", write=False)


def json_bytes(document: Any) -> bytes:
    """Compact JSON, as sent and as cached."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(document: Any, status: int = 200) -> Response:
    """DOCUMENT as a JSON response, encoded as cached answers are (and without jsonify's detour
    through the app's JSON provider)."""
    return Response(json_bytes(document), status=status, mimetype="application/json")


def cached(key: str, kind: str, fetch: Callable[[Any], Any]) -> Response:
    """Answer a read from the cache, loading it with FETCH (once for all concurrent askers)."""
    token = request_token()

    def load(min_gtid: str | None) -> tuple[int, bytes]:
        metrics.CACHE_LOADS.labels(kind).inc()
        try:
            return 200, json_bytes(read(fetch, min_gtid))
        except NotFound as error:
            return 404, problem_body(Problem(404, str(error).capitalize() + "."))

    min_gtid = token.gtid if token else None
    if not current_app.extensions["settings"].cache_enabled or (token and token.skip_cache):
        served = Served(*load(min_gtid), Outcome.BYPASS)
    else:
        served = cache().read(key, load, min_gtid)
    g.cache_outcome = served.outcome.value
    metrics.CACHE_REQUESTS.labels(served.outcome.value).inc()
    mimetype = "application/json" if served.status == 200 else PROBLEM_JSON
    return Response(served.body, status=served.status, mimetype=mimetype)
