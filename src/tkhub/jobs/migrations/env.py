"""Alembic environment of the jobs tables; its own version table, so the jobs service
can share a PostgreSQL database with the catalog."""

from __future__ import annotations

from alembic import context

from tkhub.jobs.models import Base

VERSION_TABLE = "tkhub_jobs_alembic_version"

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
