"""Alembic environment: migrates the primary (the member that takes writes, after a failover too),
as the application user, from environment settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from app.config import Settings
from app.db.engines import find_primary, node_url, tls_args
from app.models import metadata

settings = Settings()  # type: ignore[call-arg]  # every field comes from the environment
url = node_url(settings, find_primary(settings))


def run_offline() -> None:
    """Emit SQL instead of running it (alembic upgrade --sql)."""
    context.configure(
        url=url.render_as_string(hide_password=True), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations against the primary."""
    engine = create_engine(url, connect_args=tls_args(settings))
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
