"""JSON log lines: one object per line. Shared by the API (app.logs) and gunicorn's own logs.

It lives outside the ``app`` package on purpose: gunicorn's master reads gunicorn.conf.py, which
uses this formatter; had it imported ``app``, every worker forked after a reload (SIGHUP) would
inherit the old code from the master instead of loading the new one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

# Attributes every LogRecord has; anything else was passed through extra= and is logged too.
STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Time, level, logger, message, served_by, what CONTEXT adds, and the record's extras."""

    def __init__(self, served_by: str, context: Callable[[], dict[str, Any]] | None = None) -> None:
        """SERVED_BY names this API replica in every line; CONTEXT adds per-request fields."""
        super().__init__()
        self.served_by, self.context = served_by, context

    def format(self, record: logging.LogRecord) -> str:
        """Render RECORD as a JSON line."""
        line: dict[str, Any] = {
            # Milliseconds: ordering events of several processes needs more than whole seconds.
            "time": f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "served_by": self.served_by,
        }
        if self.context is not None:
            line.update(self.context())
        line.update({k: v for k, v in vars(record).items() if k not in STANDARD_ATTRS})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
