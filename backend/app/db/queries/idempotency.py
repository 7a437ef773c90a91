"""SQL of idempotency keys: a POST retried with the same key gets the first answer, and writes once.

The key is claimed by inserting its row in the same transaction as the write it protects, so
the claim and the write commit or roll back together. A concurrent request with the same key
waits on that row's lock; once the first commits, its insert fails as a duplicate and it
replays the stored answer instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, insert, text, update
from sqlalchemy.exc import IntegrityError

from app.db.clock import utcnow
from app.db.errors import DUP_ENTRY, is_code
from app.db.sql import fetch_one
from app.models import idempotency_keys

PLACEHOLDER_STATUS = 0  # the row's answer until the write it protects has one
STORED = (
    "SELECT fingerprint, status, body, location FROM idempotency_keys WHERE idempotency_key = %s"
)


POSITION = "SELECT @@gtid_binlog_pos AS position"
PURGE = text(
    "DELETE FROM idempotency_keys WHERE created_at < :before ORDER BY created_at LIMIT :limit"
)


class KeyTaken(Exception):
    """The key was used before: replay its stored answer."""


def claim(*, conn: Connection, key: str, fingerprint: str) -> None:
    """Take KEY for this request (raises KeyTaken when an earlier request committed it)."""
    row = {
        "idempotency_key": key,
        "fingerprint": fingerprint,
        "status": PLACEHOLDER_STATUS,
        "body": b"",
        "created_at": utcnow(),
    }
    try:
        conn.execute(insert(idempotency_keys).values(**row))
    except IntegrityError as error:
        if is_code(error, DUP_ENTRY):
            raise KeyTaken(key) from error
        raise


def record(*, conn: Connection, key: str, status: int, body: bytes, location: str | None) -> None:
    """Store the answer of the request that claimed KEY."""
    conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.idempotency_key == key)
        .values(status=status, body=body, location=location)
    )


def stored(*, conn: Any, key: str) -> dict[str, Any] | None:
    """The stored answer for KEY, read on the primary, with that primary's binlog position now
    (``position``). The answer was stored in the same transaction as the write it answers, so
    that position covers the write: a replay's consistency token is never weaker than the
    original one (the connection's own last GTID may belong to any earlier request)."""
    row = fetch_one(conn, STORED, (key,))
    if row is None:
        return None
    position = fetch_one(conn, POSITION, ())
    return {**row, "position": str(position["position"]) if position else ""}


def purge(conn: Connection, retention_s: float, limit: int = 1000) -> int:
    """Delete up to LIMIT keys stored more than RETENTION_S ago, oldest first; how many went.

    A retry later than that is a new request: its write runs again."""
    before = utcnow() - timedelta(seconds=retention_s)
    return int(conn.execute(PURGE, {"before": before, "limit": limit}).rowcount)
