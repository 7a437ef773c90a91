"""Server-Sent Events framing (pure): what a push stream writes, and the Last-Event-ID it reads.

Every post is one event whose ``id:`` is its stream sequence in JetStream, so the id a browser
sends back when it reconnects names a point in the stream that every push process shares.
"""

from __future__ import annotations

import json
import re
from typing import Any

LAST_EVENT_ID = re.compile(r"^[0-9]{1,19}$")
MAX_SEQUENCE = 2**63 - 1


class BadLastEventId(ValueError):
    """A Last-Event-ID that is not a stream sequence."""


def last_event_id(value: str | None) -> int | None:
    """The stream sequence a reconnecting client has seen (None: a new client).

    Empty counts as absent: a browser sends what the last id: line said, and a client may have
    been told to forget its position (an empty id).
    """
    if value is None or value == "":
        return None
    if not LAST_EVENT_ID.match(value) or int(value) > MAX_SEQUENCE:
        shown = value if len(value) <= 32 else value[:32] + "..."  # never echo kilobytes back
        raise BadLastEventId(f"Last-Event-ID must be a stream sequence (digits), not {shown!r}")
    return int(value)


def event(name: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One event; DATA is JSON on one line (JSON escapes any newline inside strings)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"{head}event: {name}\ndata: {body}\n\n".encode()


def comment(text: str) -> bytes:
    """A comment line: ignored by clients, it keeps an idle connection visibly alive."""
    return f": {text}\n\n".encode()


def retry(milliseconds: int) -> bytes:
    """How long the browser waits before it reconnects."""
    return f"retry: {milliseconds}\n\n".encode()
