"""The one place that reads the wall clock for stored timestamps."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now in UTC, naive (as stored in DATETIME(6) columns)."""
    return datetime.now(UTC).replace(tzinfo=None)
