"""The primary's epoch: mysql/failover.sh writes it on the node it promotes, before that node
takes writes, so every node that replicates from it holds the new epoch, and a former primary
that wakes up writable (it was frozen through the failover) holds an older one. When two members
are writable, the writers follow the one with the higher epoch (app/db/topology.py).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the one-row epoch table (epoch 0: the configured primary, no failover yet)."""
    epoch = op.create_table(
        "primary_epoch",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("changed_at", DATETIME(fsp=6), nullable=False),
        mysql_engine="InnoDB",
    )
    op.execute(
        epoch.insert().values(id=1, epoch=0, member="", changed_at=sa.text("UTC_TIMESTAMP(6)"))
    )


def downgrade() -> None:
    """Drop the epoch table."""
    op.drop_table("primary_epoch")
