"""images table

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("display_name_override", sa.String(200), nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("image", sa.String(512), nullable=True),
        sa.Column("python", sa.String(4096), nullable=True),
        sa.Column("gpu", sa.String(16), nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False),
        sa.Column("allowed_groups", sa.JSON, nullable=False),
        sa.Column("resources", sa.JSON, nullable=False),
        sa.Column("packages", sa.JSON, nullable=False),
        sa.Column("examples", sa.String(200), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("registry", sa.String(200), nullable=True),
        sa.Column("repository", sa.String(512), nullable=True),
        sa.Column("tag", sa.String(128), nullable=True),
        sa.Column("digest", sa.String(128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_images_one_default",
        "images",
        ["is_default"],
        unique=True,
        sqlite_where=sa.text("is_default"),
        postgresql_where=sa.text("is_default"),
    )
    op.create_index("ix_images_registry", "images", ["registry", "repository", "tag"])


def downgrade() -> None:
    op.drop_index("ix_images_registry", "images")
    op.drop_index("ix_images_one_default", "images")
    op.drop_table("images")
