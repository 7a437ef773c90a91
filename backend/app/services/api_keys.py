"""API keys: created and revoked by an operator (app.cli), checked on every request that sends one.

A key reads ``zk_<key id>_<secret>``. The key id (12 hex characters) is public: it names the key
in logs, metrics and the CLI. The secret is 256 random bits; only its SHA-256 is stored, so a
copy of the database does not hand out working keys. A slow password hash (bcrypt, argon2) would
add nothing here: it defends guessable secrets, and these are random.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, update

from app.db.sql import fetch_all, fetch_one
from app.models import api_keys
from app.services.clock import utcnow

PREFIX = "zk_"
KEY_ID_HEX = 12
SECRET_MAX = 64
TIERS = ("critical", "standard")
LOOKUP = "SELECT key_id, secret_sha256, tier, name, revoked_at FROM api_keys WHERE key_id = %s"
LIST = "SELECT key_id, tier, name, created_at, revoked_at FROM api_keys ORDER BY created_at"


@dataclass(frozen=True)
class Client:
    """Who sent a request with a valid key."""

    key_id: str
    tier: str
    name: str


class InvalidKey(Exception):
    """The key is malformed, unknown, or its secret does not match."""


class RevokedKey(Exception):
    """The key existed and was revoked."""


def split_key(key: str) -> tuple[str, str]:
    """(key id, secret) of KEY; InvalidKey when it does not have the shape of a key."""
    body = key.removeprefix(PREFIX)
    key_id, separator, secret = (
        body[:KEY_ID_HEX],
        body[KEY_ID_HEX : KEY_ID_HEX + 1],
        body[KEY_ID_HEX + 1 :],
    )
    well_formed = (
        key.startswith(PREFIX)
        and separator == "_"
        and len(key_id) == KEY_ID_HEX
        and all(c in "0123456789abcdef" for c in key_id)
        and 0 < len(secret) <= SECRET_MAX
    )
    if not well_formed:
        raise InvalidKey("malformed")
    return key_id, secret


def digest(secret: str) -> str:
    """What is stored for SECRET."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(*, conn: Connection, tier: str, name: str) -> tuple[str, str]:
    """A new key of TIER: (key id, the whole key). The whole key is shown once, never stored."""
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {', '.join(TIERS)}")
    key_id, secret = secrets.token_hex(KEY_ID_HEX // 2), secrets.token_urlsafe(32)
    row = {"key_id": key_id, "secret_sha256": digest(secret), "tier": tier, "name": name}
    conn.execute(insert(api_keys).values(**row, created_at=utcnow()))
    return key_id, f"{PREFIX}{key_id}_{secret}"


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


def verify(row: dict[str, Any] | None, secret: str) -> Client:
    """The client a key belongs to, given its stored ROW and the SECRET that was sent."""
    if row is None or not hmac.compare_digest(row["secret_sha256"], digest(secret)):
        raise InvalidKey("unknown")
    revoked: datetime | None = row["revoked_at"]
    if revoked is not None:
        raise RevokedKey(row["key_id"])
    return Client(row["key_id"], row["tier"], row["name"])
