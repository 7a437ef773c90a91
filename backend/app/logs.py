"""JSON log lines on stderr, each with the request id when there is a request."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import g, has_request_context

# Attributes every LogRecord has; anything else was passed through extra= and is logged too.
STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and extras."""

    def __init__(self, served_by: str) -> None:
        """SERVED_BY names this API replica in every line."""
        super().__init__()
        self.served_by = served_by

    def format(self, record: logging.LogRecord) -> str:
        """Render RECORD as a JSON line."""
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "served_by": self.served_by,
        }
        if has_request_context():
            line["request_id"] = g.get("request_id")
        line.update({k: v for k, v in vars(record).items() if k not in STANDARD_ATTRS})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str, served_by: str) -> None:
    """Route the root logger to stderr as JSON at LEVEL."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(served_by))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
