"""The message-queue step: the transactional outbox, the relay's lease, and what the consumer
keeps (per-user counters and the events it applied).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME, MEDIUMBLOB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create outbox, relay_lease (with its one row), user_stats and applied_events."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.CHAR(32, collation="ascii_bin"), nullable=False, unique=True),
        sa.Column("subject", sa.String(64, collation="ascii_bin"), nullable=False),
        sa.Column("payload", MEDIUMBLOB, nullable=False),
        sa.Column("created_at", DATETIME(fsp=6), nullable=False),
        sa.Column("published_at", DATETIME(fsp=6), nullable=True),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    # The relay's two questions: what is not published yet, in order; what may be purged.
    op.create_index("ix_outbox_published_at_id", "outbox", ["published_at", "id"])
    op.create_table(
        "relay_lease",
        sa.Column("name", sa.String(32, collation="ascii_bin"), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", DATETIME(fsp=6), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.execute(
        "INSERT INTO relay_lease (name, holder, expires_at) "
        "VALUES ('outbox', '', '1970-01-01 00:00:01')"
    )
    op.create_table(
        "user_stats",
        sa.Column(
            "user_id",
            sa.BigInteger,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("post_count", sa.BigInteger, nullable=False),
        sa.Column("last_post_at", DATETIME(fsp=6), nullable=True),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "applied_events",
        sa.Column("event_id", sa.CHAR(32, collation="ascii_bin"), primary_key=True),
        sa.Column("applied_at", DATETIME(fsp=6), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_applied_events_applied_at", "applied_events", ["applied_at"])


def downgrade() -> None:
    """Drop the four tables."""
    op.drop_table("applied_events")
    op.drop_table("user_stats")
    op.drop_table("relay_lease")
    op.drop_table("outbox")
