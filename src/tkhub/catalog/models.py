"""SQLAlchemy 2 models of the catalog: one row per environment.

Admin-owned columns (``hidden``, ``is_default``, ``display_name_override``,
``allowed_groups``) are never written by a registry sync; the label-derived
``display_name`` is. The public display name is the override, else the label value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Image(Base):
    __tablename__ = "images"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    display_name_override: Mapped[str | None] = mapped_column(String(200), default=None)
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))
    image: Mapped[str | None] = mapped_column(String(512), default=None)
    python: Mapped[str | None] = mapped_column(String(4096), default=None)
    gpu: Mapped[str] = mapped_column(String(16))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    allowed_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    resources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    packages: Mapped[list[str]] = mapped_column(JSON, default=list)
    examples: Mapped[str | None] = mapped_column(String(200), default=None)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the build check's
    source: Mapped[str] = mapped_column(String(16), default="api")
    registry_name: Mapped[str | None] = mapped_column("registry", String(200), default=None)
    repository: Mapped[str | None] = mapped_column(String(512), default=None)
    tag: Mapped[str | None] = mapped_column(String(128), default=None)
    digest: Mapped[str | None] = mapped_column(String(128), default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        # The database itself keeps "at most one default", whatever the writer.
        Index(
            "ix_images_one_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        Index("ix_images_registry", "registry", "repository", "tag"),
    )

    @property
    def public_display_name(self) -> str:
        return self.display_name_override or self.display_name
