"""Idempotency keys: the first answer to a POST, kept so a retry gets it instead of a duplicate.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME, MEDIUMBLOB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create idempotency_keys."""
    op.create_table(
        "idempotency_keys",
        sa.Column("idempotency_key", sa.String(128, collation="ascii_bin"), primary_key=True),
        sa.Column("fingerprint", sa.CHAR(64, collation="ascii_bin"), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("body", MEDIUMBLOB, nullable=False),
        sa.Column("location", sa.String(255), nullable=True),
        sa.Column("created_at", DATETIME(fsp=6), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    """Drop idempotency_keys."""
    op.drop_table("idempotency_keys")
