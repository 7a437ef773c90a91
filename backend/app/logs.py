"""JSON log lines on stderr, each with the request id when there is a request."""

from __future__ import annotations

import logging
from typing import Any

from flask import g, has_request_context

from jsonlog import JsonFormatter


def request_fields() -> dict[str, Any]:
    """The request id of the request being served, if any."""
    return {"request_id": g.get("request_id")} if has_request_context() else {}


def configure(level: str, served_by: str) -> None:
    """Route the root logger to stderr as JSON at LEVEL."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(served_by, request_fields))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
