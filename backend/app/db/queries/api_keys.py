"""SQL of API keys: insert, revoke, list, look one up. Keys are made and checked in
app.services.api_keys; only a secret's SHA-256 is ever stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, update

from app.db.clock import utcnow
from app.db.sql import fetch_all, fetch_one
from app.models import api_keys

LOOKUP = "SELECT key_id, secret_sha256, tier, name, revoked_at FROM api_keys WHERE key_id = %s"
LIST = "SELECT key_id, tier, name, created_at, revoked_at FROM api_keys ORDER BY created_at"


def insert_key(*, conn: Connection, key_id: str, secret_sha256: str, tier: str, name: str) -> None:
    """Store a new key."""
    row = {"key_id": key_id, "secret_sha256": secret_sha256, "tier": tier, "name": name}
    conn.execute(insert(api_keys).values(**row, created_at=utcnow()))


def revoke_key(*, conn: Connection, key_id: str) -> bool:
    """Revoke KEY_ID; False when no such key is active."""
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)


def list_keys(*, conn: Any) -> list[dict[str, Any]]:
    """Every key, active and revoked, oldest first (never a secret or its hash)."""
    return fetch_all(conn, LIST, ())


def stored_key(*, conn: Any, key_id: str) -> dict[str, Any] | None:
    """The stored row of KEY_ID, or None."""
    return fetch_one(conn, LOOKUP, (key_id,))
