"""API keys (hashed, with a tier), the readiness probe's table, idempotency keys per client.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create api_keys and probes; make room for the client's key id in idempotency keys."""
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.CHAR(12, collation="ascii_bin"), primary_key=True),
        sa.Column("secret_sha256", sa.CHAR(64, collation="ascii_bin"), nullable=False),
        sa.Column("tier", sa.String(16, collation="ascii_bin"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", DATETIME(fsp=6), nullable=False),
        sa.Column("revoked_at", DATETIME(fsp=6), nullable=True),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "probes",
        sa.Column("api", sa.String(64), primary_key=True),
        sa.Column("ts", DATETIME(fsp=6), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.alter_column(
        "idempotency_keys",
        "idempotency_key",
        existing_type=sa.String(128, collation="ascii_bin"),
        type_=sa.String(160, collation="ascii_bin"),
        existing_nullable=False,
    )


def downgrade() -> None:
    """Drop api_keys and probes; idempotency keys back to 128 characters."""
    op.alter_column(
        "idempotency_keys",
        "idempotency_key",
        existing_type=sa.String(160, collation="ascii_bin"),
        type_=sa.String(128, collation="ascii_bin"),
        existing_nullable=False,
    )
    op.drop_table("probes")
    op.drop_table("api_keys")
