"""SQL of the transactional outbox and the relay's lease.

The outbox is written by the API in each write's own transaction (``add``), read and marked by
the relay in id order, and purged once published rows are older than the retention.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, text

from app.db.clock import utcnow
from app.messaging.events import Event
from app.models import outbox

UNPUBLISHED = text(
    "SELECT id, event_id, subject, payload, created_at FROM outbox "
    "FORCE INDEX (ix_outbox_published_at_id) "
    "WHERE published_at IS NULL ORDER BY id LIMIT :limit"
)
DEPTH = text(
    "SELECT COUNT(*), MIN(created_at) FROM outbox FORCE INDEX (ix_outbox_published_at_id) "
    "WHERE published_at IS NULL"
)
PURGE = text(
    "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < :before "
    "ORDER BY published_at LIMIT :limit"
)
# Taken when free or expired, renewed by its holder: one UPDATE decides, on the primary.
TAKE_LEASE = text(
    "UPDATE relay_lease SET holder = :holder, expires_at = :until "
    "WHERE name = 'outbox' AND (holder = :holder OR expires_at < :now)"
)
RELEASE_LEASE = text(
    "UPDATE relay_lease SET expires_at = '1970-01-01 00:00:01' "
    "WHERE name = 'outbox' AND holder = :holder"
)


def add(conn: Connection, event: Event) -> None:
    """Record EVENT in the outbox, in CONN's transaction (the write's own)."""
    conn.execute(
        insert(outbox).values(
            event_id=event.id,
            subject=event.subject,
            payload=event.payload(),
            created_at=event.occurred_at,
        )
    )


def unpublished(conn: Connection, limit: int) -> list[Any]:
    """Up to LIMIT rows not yet published, oldest first: (id, event_id, subject, payload,
    created_at)."""
    return list(conn.execute(UNPUBLISHED, {"limit": limit}))


def mark_published(conn: Connection, ids: list[int]) -> None:
    """The broker acknowledged the rows IDS."""
    if ids:
        conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(published_at=utcnow()))


def purge(conn: Connection, retention_s: float, limit: int = 1000) -> int:
    """Delete up to LIMIT rows published more than RETENTION_S ago; how many went."""
    before = utcnow() - timedelta(seconds=retention_s)
    return conn.execute(PURGE, {"before": before, "limit": limit}).rowcount


def depth(conn: Connection) -> tuple[int, datetime | None]:
    """How many rows wait to be published, and when the oldest was written."""
    count, oldest = conn.execute(DEPTH).one()
    return int(count), oldest


def take_lease(conn: Connection, holder: str, lease_s: float) -> bool:
    """Hold (or keep holding) the relay's lease for LEASE_S from now; False while another
    relay holds it."""
    now = utcnow()
    until = now + timedelta(seconds=lease_s)
    return conn.execute(TAKE_LEASE, {"holder": holder, "until": until, "now": now}).rowcount == 1


def release_lease(conn: Connection, holder: str) -> None:
    """Give the lease up at once (a relay that stops), so another takes it without waiting."""
    conn.execute(RELEASE_LEASE, {"holder": holder})
