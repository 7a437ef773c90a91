"""SQL of the counters the queue's workers keep from events (user_stats), each event applied at
most once in effect: its id is recorded (applied_events) in the transaction of its effect."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from app.db.clock import utcnow
from app.messaging.events import POST_CREATED, USER_CREATED, USER_DELETED, Received

FIRST_APPLY = text("INSERT IGNORE INTO applied_events (event_id, applied_at) VALUES (:id, :now)")
COUNT_POST = text(
    "INSERT INTO user_stats (user_id, post_count, last_post_at) "
    "SELECT id, 1, :at FROM users WHERE id = :user_id "
    "ON DUPLICATE KEY UPDATE post_count = post_count + 1, "
    "last_post_at = GREATEST(COALESCE(last_post_at, :at), :at)"
)
START_COUNTING = text(
    "INSERT IGNORE INTO user_stats (user_id, post_count, last_post_at) "
    "SELECT id, 0, NULL FROM users WHERE id = :user_id"
)
STOP_COUNTING = text("DELETE FROM user_stats WHERE user_id = :user_id")
FORGET_APPLIED = text(
    "DELETE FROM applied_events WHERE applied_at < :before ORDER BY applied_at LIMIT :limit"
)


def apply(conn: Connection, event: Received) -> bool:
    """Apply EVENT to the counters in CONN's transaction, unless it was applied before: True when
    it changed something now. The event's id is recorded in the same transaction as its effect,
    so a redelivered event (at-least-once delivery) has its effect exactly once."""
    if conn.execute(FIRST_APPLY, {"id": event.id, "now": utcnow()}).rowcount == 0:
        return False
    if event.type == POST_CREATED:
        at = datetime.fromisoformat(str(event.data["created_at"]).removesuffix("Z"))
        conn.execute(COUNT_POST, {"user_id": int(event.data["user_id"]), "at": at})
    elif event.type == USER_CREATED:
        conn.execute(START_COUNTING, {"user_id": event.aggregate_id})
    elif event.type == USER_DELETED:
        conn.execute(STOP_COUNTING, {"user_id": event.aggregate_id})
    return True


def forget_applied(conn: Connection, older_than_s: float, limit: int = 1000) -> int:
    """Delete up to LIMIT applied-event ids older than OLDER_THAN_S (the stream keeps no older
    event to deliver again)."""
    before = utcnow() - timedelta(seconds=older_than_s)
    return conn.execute(FORGET_APPLIED, {"before": before, "limit": limit}).rowcount
