"""Units of work: the write (with retries, invalidation and the client's new token), the routed
read with failover, and the cached read. Every use case reaches the data through here.

Data flows one way: a use case calls a unit; a unit calls the cache and the router; the router
calls the engines. The read-your-writes floor goes down as an argument (consistency.py decides
it), and what the HTTP layer shows as headers comes back in the ``Call``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection

from app import metrics
from app.cache import Cache, Outcome, Served
from app.db.errors import UNAVAILABLE_ERRORS
from app.db.queries import outbox
from app.db.routing import Router
from app.errors import DatabaseUnavailable, NotFound
from app.messaging import events
from app.resilience.retry import Retrier
from app.schemas import json_bytes
from app.services.consistency import (
    Token,
    after_write,
    may_use_cache,
    near_cache_allowed,
    read_floor,
)

T = TypeVar("T")
__all__ = ["Call", "Served", "Units", "Write"]  # Served: what a cached read answers


@dataclass
class Call:
    """One request's dealings with the data. In: the client's read-your-writes token. Out: the
    node that served, how the cache was used, and the token to hand back after a write."""

    token: Token | None = None
    request_id: str = ""
    # Its answer may be kept at the edge for long (Cache.read's EDGE).
    for_edge: bool = False
    node: str = "none"
    cache: str = Outcome.BYPASS.value
    issued: Token | None = None


@dataclass
class Write:
    """A write unit of work: its connection, the cache keys whose answers it changes, and the
    request it serves (named in the events it records)."""

    conn: Connection
    keys: list[str] = field(default_factory=list)
    request_id: str = ""
    recorded: bool = False  # an event went into the outbox: wake the relays after the commit

    def touches(self, *keys: str) -> None:
        """Declare cache keys to invalidate once the write has committed."""
        self.keys.extend(keys)

    def records(self, kind: str, aggregate_id: int, at: datetime, **data: Any) -> None:
        """Record the domain event KIND in the outbox, in this unit's transaction: it is
        published if and only if the write commits (docs/messaging.md)."""
        outbox.add(self.conn, events.new(kind, aggregate_id, at, self.request_id, **data))
        self.recorded = True


class Units:
    """Runs units of work on the router, with retries, around the cache."""

    def __init__(self, router: Router, retrier: Retrier, cache: Cache, cache_enabled: bool) -> None:
        """CACHE_ENABLED False sends every cached read to the database (BYPASS)."""
        self.router, self.retrier, self.cache = router, retrier, cache
        self.cache_enabled = cache_enabled

    @contextmanager
    def writing(self, call: Call) -> Iterator[Write]:
        """A transaction on the primary; after commit, invalidate what it touched and issue the
        client's token (one that skips the cache when Redis missed the invalidation)."""
        with self.router.writer() as uow:
            call.node = uow.node
            unit = Write(uow.conn, request_id=call.request_id)
            yield unit
        notify = (events.OUTBOX_WAKE_CHANNEL,) if unit.recorded else ()
        invalidated = (
            self.cache.invalidate(unit.keys, uow.gtid, notify) if unit.keys or notify else True
        )
        if not invalidated:
            metrics.INVALIDATION_FAILURES.inc()
        call.issued = after_write(uow.gtid, invalidated) or call.issued

    def write(self, call: Call, action: Callable[[Write], T]) -> T:
        """ACTION's result, run in a write unit of work (see writing()).

        The whole unit of work runs again after an error that proves it did not commit (deadlock,
        lock wait timeout, no connection made); a connection lost mid-way is not retried, since
        its COMMIT may have been applied. Idempotency keys make even that safe for the client.
        """

        def once() -> T:
            with self.writing(call) as unit:
                return action(unit)

        try:
            return self.retrier.run(once, kind="write", write=True)
        except UNAVAILABLE_ERRORS as error:
            raise DatabaseUnavailable(str(error)) from error

    def write_once(self, call: Call, action: Callable[[Write], T]) -> T:
        """ACTION's result in one write unit of work, not retried (it decides what to answer)."""
        try:
            with self.writing(call) as unit:
                return action(unit)
        except UNAVAILABLE_ERRORS as error:
            raise DatabaseUnavailable(str(error)) from error

    def read(
        self,
        fetch: Callable[[Any], T],
        call: Call | None = None,
        floor: str | None = None,
        *,
        prefer: str | None = None,
        kind: str = "read",
    ) -> T:
        """FETCH's result on the node the router picks, one that has applied FLOOR.

        Reads are safe to repeat: a read whose connection died runs again on a fresh one
        (the router does it); a node that broke on a fresh connection too is avoided for the
        rest of this read, and the retrier tries again elsewhere. CALL, when given, learns the
        node. Saturated when only the primary could serve and its read cap is full.
        """
        avoid: set[str] = set()

        def once() -> T:
            node, value = self.router.read(fetch, floor, avoid=avoid, prefer=prefer, kind=kind)
            if call is not None:
                call.node = node
                metrics.child(metrics.DB_READS, node).inc()
            return value

        try:
            return self.retrier.run(once, kind=kind, write=False)
        except UNAVAILABLE_ERRORS as error:
            raise DatabaseUnavailable(str(error)) from error

    def cached(
        self, key: str, kind: str, fetch: Callable[[Any], Any], call: Call, missing: NotFound
    ) -> Served:
        """A read answered from the cache under KEY, loaded with FETCH (once for all concurrent
        askers): 200 with FETCH's document as JSON (or as it is, when FETCH gives the body
        already encoded: bytes), or, when FETCH found nothing (None), 404 with MISSING's text.
        Both are cached."""
        token = call.token

        def load(tombstone: str | None) -> tuple[int, bytes]:
            metrics.child(metrics.CACHE_LOADS, kind).inc()
            document = self.read(fetch, call, read_floor(token, tombstone))
            if document is None:
                return 404, missing.text
            return 200, document if isinstance(document, bytes) else json_bytes(document)

        if not self.cache_enabled or not may_use_cache(token):
            served = Served(*load(None), Outcome.BYPASS)
        else:
            # An answer nginx keeps (for_edge) trusts this process's word only once it has
            # heard every marker that reached it (Cache.read, docs/caching.md).
            served = self.cache.read(
                key,
                load,
                near=near_cache_allowed(token),
                direct=token is None,
                edge=call.for_edge,
            )
        call.cache = served.outcome.value
        metrics.child(metrics.CACHE_REQUESTS, served.outcome.value).inc()
        if served.direct:
            metrics.CACHE_DIRECT_LOADS.inc()
        return served
