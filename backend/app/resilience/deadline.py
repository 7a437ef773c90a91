"""A unit of work's deadline: how long it may still take, seen by every wait below it.

An API write must answer before nginx gives up on its replica (NGINX_ANSWER_TIMEOUT_S): only then
can nginx read "no answer" as "this replica is frozen" and send a keyed write to the next one
(docs/reliability.md, "A frozen API replica"). So a write's request opens a deadline when it
arrives (app/api/context.py), and the layers below bound what they wait for by the time left:
each database round trip (app/db/deadlines.py), a wait for the new primary after a fence, a retry.

The deadline lives in a context variable: the API's sync workers serve one request per thread, and
nothing between the request and the socket has to pass it along; the key check counts too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

_ends_at: ContextVar[float | None] = ContextVar("deadline", default=None)


def start(seconds: float | None) -> Token[float | None]:
    """Open a deadline SECONDS from now (None: none of its own), until end(). An enclosing
    deadline that ends sooner is kept: a unit of work never gets more time than its request."""
    outer = _ends_at.get()
    ends_at = outer if seconds is None else time.monotonic() + seconds
    if outer is not None and ends_at is not None:
        ends_at = min(outer, ends_at)
    return _ends_at.set(ends_at)


def end(opened: Token[float | None]) -> None:
    """Close the deadline start() OPENED: the enclosing one holds again."""
    _ends_at.reset(opened)


@contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Run the block under a deadline SECONDS from now (see start())."""
    opened = start(seconds)
    try:
        yield
    finally:
        end(opened)


def left() -> float | None:
    """Seconds until the current deadline (negative once past it); None when there is none."""
    ends_at = _ends_at.get()
    return None if ends_at is None else ends_at - time.monotonic()


def passed() -> bool:
    """The current deadline has passed (never, without one)."""
    remaining = left()
    return remaining is not None and remaining <= 0
