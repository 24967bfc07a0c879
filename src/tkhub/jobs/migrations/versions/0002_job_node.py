"""tkhub_jobs.node and .requeues: where a run was placed, and how many GPU races it lost

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
    op.add_column(
        "tkhub_jobs", sa.Column("requeues", sa.Integer, nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("tkhub_jobs") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("requeues")
        batch.drop_column("node")
