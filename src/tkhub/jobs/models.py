"""The jobs service's tables (SQLAlchemy 2), migrated by Alembic (``jobs/migrations``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued", "running", "succeeded", "failed", "cancelled"
)  # fmt: skip
ACTIVE = (QUEUED, RUNNING)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(when: datetime) -> datetime:
    """SQLite gives back naive datetimes; they were written in UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "tkhub_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    notebook: Mapped[str] = mapped_column(String(4096))  # relative to the user's notebooks/
    output: Mapped[str] = mapped_column(String(4096))  # NAME.run-<id>.ipynb, next to it
    log: Mapped[str] = mapped_column(String(4096))  # NAME.run-<id>.log
    environment: Mapped[str] = mapped_column(String(63))
    placement: Mapped[str] = mapped_column(String(255))  # the selection's key: cpu, any, ...
    count: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[str] = mapped_column(String(32), default="")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # as submitted
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    time_limit: Mapped[int] = mapped_column(Integer)  # seconds
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    reason: Mapped[str] = mapped_column(Text, default="")  # why it failed or waits
    failed_cell: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    gpus: Mapped[list[str]] = mapped_column(JSON, default=list)
    runner_ref: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # pid, Job name
    # where the run was placed; "" until a scheduler has placed it (GPU jobs queued
    # behind it wait for that, so the order survives a restart of the service)
    node: Mapped[str] = mapped_column(String(253), default="")
    requeues: Mapped[int] = mapped_column(Integer, default=0)  # GPU races lost so far
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    duration: Mapped[float | None] = mapped_column(Float, default=None)  # seconds running
    cancel_requested: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (Index("ix_tkhub_jobs_state", "state", "id"),)
