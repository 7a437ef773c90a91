"""JSON log lines on stderr, each with the request id while a request is served.

Flask-free, so that every process may log through it (the relay, the workers, the heartbeat, the
push and purger processes load no web framework): the API's request hook sets REQUEST_ID, and
clears it when the request ends.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from jsonlog import JsonFormatter

# The id of the request being served in this context (None: no request).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def request_fields() -> dict[str, Any]:
    """The request id of the request being served, if any."""
    found = REQUEST_ID.get()
    return {"request_id": found} if found is not None else {}


def configure(level: str, served_by: str) -> None:
    """Route the root logger to stderr as JSON at LEVEL."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(served_by, request_fields))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
