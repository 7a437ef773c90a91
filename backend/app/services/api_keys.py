"""API keys: made by an operator (app.processes.cli), checked on every request that sends one.

A key reads ``zk_<key id>_<secret>``. The key id (12 hex characters) is public: it names the key
in logs, metrics and the CLI. The secret is 256 random bits; only its SHA-256 is stored, so a
copy of the database does not hand out working keys. A slow password hash (bcrypt, argon2) would
add nothing here: it defends guessable secrets, and these are random.

Keys are looked up on the primary (a key created a moment ago is there already), on a replica
when the primary is down, and remembered by each worker for API_KEY_CACHE_TTL_S, which is
therefore how long a revoked key may still work.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from app import metrics
from app.db.queries import api_keys as key_rows
from app.db.routing import PRIMARY
from app.errors import InvalidKey, MalformedKey, RevokedKey
from app.services.units import Units

PREFIX = "zk_"
KEY_ID_HEX = 12
SECRET_MAX = 64
TIERS = ("critical", "standard")


@dataclass(frozen=True)
class Client:
    """Who sent a request with a valid key."""

    key_id: str
    tier: str
    name: str


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
        raise MalformedKey("malformed")
    return key_id, secret


def digest(secret: str) -> str:
    """What is stored for SECRET."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(*, conn: Connection, tier: str, name: str) -> tuple[str, str]:
    """A new key of TIER: (key id, the whole key). The whole key is shown once, never stored."""
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {', '.join(TIERS)}")
    key_id, secret = secrets.token_hex(KEY_ID_HEX // 2), secrets.token_urlsafe(32)
    key_rows.insert_key(
        conn=conn, key_id=key_id, secret_sha256=digest(secret), tier=tier, name=name
    )
    return key_id, f"{PREFIX}{key_id}_{secret}"


def verify(row: dict[str, Any] | None, secret: str) -> Client:
    """The client a key belongs to, given its stored ROW and the SECRET that was sent."""
    if row is None or not hmac.compare_digest(row["secret_sha256"], digest(secret)):
        raise InvalidKey("unknown")
    revoked: datetime | None = row["revoked_at"]
    if revoked is not None:
        raise RevokedKey(row["key_id"])
    return Client(row["key_id"], row["tier"], row["name"])


class Keys:
    """Identifies the client behind a key, remembering stored rows (or their absence) by key id
    for TTL_S in this worker.

    Ids that were ever found stored are looked up again whenever their row expires (a revocation
    shows within TTL_S). Any other id (a new key, or one made up) spends one of
    UNKNOWN_PER_S lookups a second: a flood of well-formed random ids costs the primary that
    many queries a second per worker, then is refused unread until the allowance refills.
    """

    def __init__(
        self,
        units: Units,
        ttl_s: float,
        unknown_per_s: float = 10.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Small dicts with expiry; cleared when full (they are only caches)."""
        self.units, self.ttl_s, self.max_entries = units, ttl_s, max_entries
        self.unknown_per_s, self.clock = unknown_per_s, clock
        self._rows: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._known: set[str] = set()  # ids found stored at some point
        self._allowance, self._refilled = unknown_per_s, clock()

    def identify(self, key: str) -> Client:
        """The client KEY belongs to; InvalidKey or RevokedKey otherwise (each counted)."""
        try:
            key_id, secret = split_key(key)
            return verify(self.row(key_id), secret)
        except InvalidKey as error:
            metrics.AUTH_FAILURES.labels(str(error)).inc()
            raise
        except RevokedKey:
            metrics.AUTH_FAILURES.labels("revoked").inc()
            raise

    def row(self, key_id: str) -> dict[str, Any] | None:
        """The stored row of KEY_ID, from memory when fresh, else from the database."""
        now = self.clock()
        hit = self._rows.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        if key_id not in self._known and not self._may_look_up(now):
            return None  # not read: an unknown key, as far as this worker can tell now
        row = self.units.read(
            lambda conn: key_rows.stored_key(conn=conn, key_id=key_id),
            prefer=PRIMARY,
            kind="key_lookup",
        )
        if len(self._rows) >= self.max_entries:
            self._rows.clear()
        self._rows[key_id] = (now + self.ttl_s, row)
        if row is not None and len(self._known) < self.max_entries:
            self._known.add(key_id)
        return row

    def _may_look_up(self, now: float) -> bool:
        """Spend one lookup of an id not known to exist, if the allowance has one."""
        self._allowance = min(
            self.unknown_per_s, self._allowance + (now - self._refilled) * self.unknown_per_s
        )
        self._refilled = now
        if self._allowance < 1:
            return False
        self._allowance -= 1
        return True
