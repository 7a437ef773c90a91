"""Tables of the application schema (SQLAlchemy Core; Alembic migrations create them)."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.dialects.mysql import DATETIME, MEDIUMBLOB

NAME_MAX = 64
BIGINT_MAX = 2**63 - 1  # ids are BIGINT: none is larger
POST_BODY_MAX = 280

# Timestamps are stored as UTC, to the microsecond.
TIMESTAMP_UTC = DATETIME(fsp=6)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", String(NAME_MAX), nullable=False),
    Column("second_name", String(NAME_MAX), nullable=False),
    Column("created_at", TIMESTAMP_UTC, nullable=False),
    Column("updated_at", TIMESTAMP_UTC, nullable=False),
)

posts = Table(
    "posts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("body", String(POST_BODY_MAX), nullable=False),
    Column("created_at", TIMESTAMP_UTC, nullable=False),
    # A user's posts newest first, by keyset: WHERE user_id = ? AND id < ? ORDER BY id DESC.
    Index("ix_posts_user_id_id", "user_id", "id"),
)

# One row, rewritten a few times a second on the primary by app.heartbeat; on a replica its age
# is the replica's lag.
heartbeat = Table(
    "heartbeat",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("ts", TIMESTAMP_UTC, nullable=False),
)

# The first answer to a POST sent with an Idempotency-Key (see services/idempotency.py).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("idempotency_key", String(160), primary_key=True),
    Column("fingerprint", CHAR(64), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("body", MEDIUMBLOB, nullable=False),
    Column("location", String(255), nullable=True),
    Column("created_at", TIMESTAMP_UTC, nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

# Clients' API keys: only a SHA-256 of each secret is kept (see services/api_keys.py).
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", CHAR(12), primary_key=True),
    Column("secret_sha256", CHAR(64), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("name", String(NAME_MAX), nullable=False),
    Column("created_at", TIMESTAMP_UTC, nullable=False),
    Column("revoked_at", TIMESTAMP_UTC, nullable=True),
)

# One row per API replica, rewritten by /readyz to prove the primary's write path works.
probes = Table(
    "probes",
    metadata,
    Column("api", String(64), primary_key=True),
    Column("ts", TIMESTAMP_UTC, nullable=False),
)

# The transactional outbox: each write that changes a user or a post inserts its domain event here
# in its own transaction; the relay publishes the rows in id order (app/queue/relay.py).
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", CHAR(32), nullable=False, unique=True),
    Column("subject", String(64), nullable=False),
    Column("payload", MEDIUMBLOB, nullable=False),
    Column("created_at", TIMESTAMP_UTC, nullable=False),
    Column("published_at", TIMESTAMP_UTC, nullable=True),
    Index("ix_outbox_published_at_id", "published_at", "id"),
)

# One row: which relay publishes the outbox, until when (a lease, renewed while it holds it).
relay_lease = Table(
    "relay_lease",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", TIMESTAMP_UTC, nullable=False),
)

# Kept by the queue's workers from post events (app/queue/worker.py); shown with the user.
user_stats = Table(
    "user_stats",
    metadata,
    Column(
        "user_id",
        BigInteger,
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("post_count", BigInteger, nullable=False),
    Column("last_post_at", TIMESTAMP_UTC, nullable=True),
)

# The events a worker applied, by id: a redelivered event finds its id here and changes nothing.
applied_events = Table(
    "applied_events",
    metadata,
    Column("event_id", CHAR(32), primary_key=True),
    Column("applied_at", TIMESTAMP_UTC, nullable=False),
    Index("ix_applied_events_applied_at", "applied_at"),
)
