"""The heartbeat row: rewritten on the primary, its age on a replica is that replica's lag.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the one-row heartbeat table."""
    heartbeat = op.create_table(
        "heartbeat",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", DATETIME(fsp=6), nullable=False),
        mysql_engine="InnoDB",
    )
    op.execute(heartbeat.insert().values(id=1, ts=sa.text("UTC_TIMESTAMP(6)")))


def downgrade() -> None:
    """Drop the heartbeat table."""
    op.drop_table("heartbeat")
