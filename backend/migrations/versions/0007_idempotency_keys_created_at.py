"""An index on idempotency_keys.created_at: the relays delete the stored answers older than
IDEMPOTENCY_RETENTION_S a batch at a time, oldest first (they were kept for ever).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the index (InnoDB builds it in place, writes go on)."""
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
