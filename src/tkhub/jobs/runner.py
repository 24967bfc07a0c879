"""What each mode's runner does for the jobs service: start, poll, stop a run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tkhub.gpu.model import Inventory, Placement
from tkhub.jobs.models import FAILED, SUCCEEDED, Job, as_utc
from tkhub.selection import Selection


@dataclass(frozen=True)
class Started:
    gpus: list[str] = field(default_factory=list)
    ref: dict[str, Any] = field(default_factory=dict)  # what finds the run again
    node: str = ""  # where it runs, when known at once (a scheduler may place it later)


@dataclass(frozen=True)
class Waiting:
    reason: str  # shown to the user: "waiting for a free GPU"


@dataclass(frozen=True)
class Requeue:
    """The run lost its GPUs before it began (another workload took them between the
    check and the placement): it goes back to its place in the queue."""

    reason: str


@dataclass(frozen=True)
class Outcome:
    state: str  # succeeded | failed
    reason: str = ""
    error: str = ""
    failed_cell: int | None = None


def outcome_from_result(result: Any) -> Outcome:
    """The outcome ``tkhub.jobs.execute`` reported (None: it never reported one)."""
    if result is None:
        return Outcome(FAILED, "the run ended without a result (it was killed)")
    if not isinstance(result, dict) or result.get("state") != SUCCEEDED:
        result = result if isinstance(result, dict) else {}
        cell = result.get("cell")
        return Outcome(FAILED, str(result.get("reason") or "failed")[:500],
                       str(result.get("error") or "")[:4000],
                       cell if isinstance(cell, int) else None)  # fmt: skip
    return Outcome(SUCCEEDED, "finished")


def waiting_for(placement: Placement) -> str:
    """Why a queued job waits, for the user."""
    if placement.kind == "auto":
        plural = "s" if placement.count > 1 else ""
        return f"waiting for {placement.count} free GPU{plural}"
    return f"waiting for {placement.describe()} to be free"


class Runner(ABC):
    """One mode's way to run jobs. Every method is safe to call again after a restart."""

    @property
    def places_later(self) -> bool:
        """Whether a started run's GPUs show as taken only once a scheduler places it
        (a cluster without Kueue): until then the service starts no other GPU job, which
        would find the same GPUs free and race it for them."""
        return False

    def placed_on(self, job: Job) -> str | None:
        """The node the run was placed on, once the last ``poll`` saw it; else None."""
        return None

    @abstractmethod
    async def inventory(self) -> Inventory:
        """GPUs that exist, as if all were free: what a job may ask for and wait for."""

    @abstractmethod
    def notebooks_dir(self, user: str) -> Path:
        """The user's notebooks folder as this service sees it."""

    def unusable(self, selection: Selection) -> str | None:
        """Why this mode cannot run the selection at all (refused at submit), or None."""
        return None

    @abstractmethod
    async def start(self, job: Job, selection: Selection, groups: list[str]) -> Started | Waiting:
        """Start the run now, or say why it waits (no free GPU)."""

    @abstractmethod
    async def poll(self, job: Job) -> Outcome | Requeue | None:
        """The run's outcome once it has ended, ``Requeue`` when it lost its GPUs before
        it began, else None."""

    def running_since(self, job: Job) -> datetime | None:
        """When the run really began, from which its time limit counts; None while a
        queue outside tkhub (Kueue) still holds it."""
        return as_utc(job.started) if job.started else None

    def held_position(self, job: Job) -> int | None:
        """Its place in a queue outside tkhub (1 = next), while one holds it."""
        return None

    @abstractmethod
    async def stop(self, job: Job) -> None:
        """End the run and everything it started; free what it held."""

    @abstractmethod
    def read_log(self, job: Job, limit: int) -> str:
        """The end of the run's log (at most ``limit`` bytes), read as safely as the user
        could: never through a link out of their notebooks."""
