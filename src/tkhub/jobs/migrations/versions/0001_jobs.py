"""tkhub_jobs table

Revision ID: jobs_0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "jobs_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tkhub_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("notebook", sa.String(4096), nullable=False),
        sa.Column("output", sa.String(4096), nullable=False),
        sa.Column("log", sa.String(4096), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("placement", sa.String(255), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("size", sa.String(32), nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("time_limit", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("failed_cell", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("gpus", sa.JSON, nullable=False),
        sa.Column("runner_ref", sa.JSON, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration", sa.Float, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
    )
    op.create_index("ix_tkhub_jobs_user", "tkhub_jobs", ["user"])
    op.create_index("ix_tkhub_jobs_state", "tkhub_jobs", ["state", "id"])


def downgrade() -> None:
    op.drop_index("ix_tkhub_jobs_state", "tkhub_jobs")
    op.drop_index("ix_tkhub_jobs_user", "tkhub_jobs")
    op.drop_table("tkhub_jobs")
