"""The sync report (``POST /api/v1/sync``, ``tkhub catalog sync``) and the status
kept per registry (``GET /api/v1/sync/status``).

The status lives in ``<state_dir>/registry-sync.json`` so a sync run from the
command line and the service's periodic sync tell the same story.
"""

from __future__ import annotations

import fcntl
import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from tkhub.files import write_atomic

STATUS_FILE = "registry-sync.json"


def now() -> datetime:
    return datetime.now(UTC)


class Change(BaseModel):
    name: str
    repository: str
    tag: str
    digest: str | None = None
    platforms: list[str] = Field(default_factory=list, description="all platforms of an index")


class Skip(BaseModel):
    repository: str
    tag: str | None = None
    reason: str


class RegistryReport(BaseModel):
    registry: str
    repository: str | None = Field(default=None, description="set for a one-repository sync")
    started_at: datetime
    finished_at: datetime | None = None
    ok: bool = True
    added: list[Change] = Field(default_factory=list)
    updated: list[Change] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    skipped: list[Skip] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


class SyncReport(BaseModel):
    registries: list[RegistryReport] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self.registries)


class RegistryStatus(BaseModel):
    registry: str
    last_attempt: datetime | None = None
    last_success: datetime | None = Field(
        default=None, description="when a sync last read the whole registry"
    )
    ok: bool | None = None
    errors: list[str] = Field(default_factory=list)
    skipped: list[Skip] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


class SyncStatus(BaseModel):
    interval_seconds: int
    running: bool = False
    registries: list[RegistryStatus] = Field(default_factory=list)


def status_path(state_dir: Path) -> Path:
    return state_dir / STATUS_FILE


def read_status(state_dir: Path) -> dict[str, RegistryStatus]:
    try:
        raw = json.loads(status_path(state_dir).read_text())
    except (OSError, ValueError):
        return {}
    return {name: RegistryStatus.model_validate(item) for name, item in raw.items()}


def record(state_dir: Path, report: SyncReport) -> None:
    """Merge this run into the status file (locked, replaced atomically)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = status_path(state_dir)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        statuses = read_status(state_dir)
        for run in report.registries:
            old = statuses.get(run.registry) or RegistryStatus(registry=run.registry)
            statuses[run.registry] = _updated(old, run)
        body = json.dumps({k: v.model_dump(mode="json") for k, v in statuses.items()})
        write_atomic(path, body, mode=0o644)


def _updated(old: RegistryStatus, run: RegistryReport) -> RegistryStatus:
    counts = {
        "added": len(run.added),
        "updated": len(run.updated),
        "unchanged": len(run.unchanged),
        "removed": len(run.removed),
        "skipped": len(run.skipped),
    }
    whole = run.ok and run.repository is None
    return RegistryStatus(
        registry=run.registry,
        last_attempt=run.started_at,
        last_success=run.finished_at if whole else old.last_success,
        ok=run.ok,
        errors=run.errors,
        skipped=run.skipped,
        counts=counts,
    )
