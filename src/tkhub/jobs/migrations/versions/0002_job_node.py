"""tkhub_jobs.node: where a run was placed, kept across restarts of the service

Revision ID: jobs_0002
Revises: jobs_0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "jobs_0002"
down_revision = "jobs_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a job running when this is applied gets its node at its next poll
    op.add_column(
        "tkhub_jobs", sa.Column("node", sa.String(253), nullable=False, server_default="")
    )


def downgrade() -> None:
    with op.batch_alter_table("tkhub_jobs") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("node")
