"""The jobs service's rules: who may do what, the queue, and each job's life.

Submits are validated with the spawn page's parser against GPUs that exist (all as
if free), so a job may ask for a GPU that is busy now: it waits in the queue, in
submit order, and the runner starts it when the GPU frees. The parsed selection is
kept in the job's row (environment, placement, count, size) and read back from there,
never parsed again. The queue is the table itself: its order, and which started GPU
jobs a scheduler has not placed yet, survive a restart of the service. ``tick``
moves every job along; the app calls it every half second and after each submit or
cancel.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog.client import CatalogClient
from tkhub.catalog.schemas import ImagePublic
from tkhub.errors import TkhubError
from tkhub.gpu.model import Inventory, Placement
from tkhub.jobs.models import ACTIVE, CANCELLED, FAILED, QUEUED, RUNNING, Job, as_utc
from tkhub.jobs.paths import NotebookRefused, notebook_path, run_files
from tkhub.jobs.runner import Outcome, Requeue, Runner, Started, waiting_for
from tkhub.jobs.schemas import JobPublic, JobSubmit
from tkhub.selection import (
    Selection,
    SelectionError,
    normalize_params,
    parse_selection,
    recheck_placement,
    spawn_choices,
)

log = logging.getLogger(__name__)
CatalogReader = Callable[[], Awaitable[Sequence[ImagePublic]]]
# A job that keeps losing its GPUs between tkhub's check and the scheduler's placement
# is failed after this many requeues, rather than cycling for ever
MAX_REQUEUES = 3
Offer = tuple[Sequence[ImagePublic], Inventory]


def catalog_reader(url: str, token: str, timeout: float) -> CatalogReader:
    """The catalog as the spawners read it: every entry (a token with the read-all
    scope); the service filters them per user, by the same code as the spawn page."""

    async def read() -> Sequence[ImagePublic]:
        async with CatalogClient(url, token, timeout=timeout) as c:
            return await c.list_images()

    return read


def stored_selection(job: Job, entries: Sequence[ImagePublic]) -> Selection:
    """The selection parsed at submit, read back from the job's row, with its
    environment's entry as the catalog has it now (its current digest). Only the
    environment can have gone since: removed, or kept from the submitter's groups."""
    saved = job.options or {}
    entry = next((e for e in entries if e.name == job.environment), None)
    if entry is None:
        raise SelectionError("image", f"the environment {job.environment!r} was removed")
    groups, admin = set(saved.get("groups", [])), bool(saved.get("admin", False))
    if not entry.visible_to(groups, admin=admin):
        raise SelectionError("image", f"{entry.title} is no longer available to your groups")
    placement = Placement.from_key(job.placement, job.count or 1)
    if placement is None:  # rows are written from a parsed placement's key
        raise SelectionError("gpu", f"the stored placement {job.placement!r} is not a key")
    return Selection(entry, placement, job.size)


@dataclass(frozen=True)
class Requester:
    """Who calls: a user (their jobs) or an admin (everyone's)."""

    name: str
    admin: bool
    groups: frozenset[str]


class JobRefused(Exception):
    """A request the service turns down; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def now() -> datetime:
    return datetime.now(UTC)


class JobsService:
    def __init__(
        self, sessions: sessionmaker[Session], runner: Runner, catalog: CatalogReader
    ) -> None:
        self.sessions = sessions
        self.runner = runner
        self.catalog = catalog

    # --- requests -------------------------------------------------------------------

    async def offer(self) -> Offer:
        """The catalog and the GPUs a job may ask for: read once per request or tick."""
        try:
            entries = await self.catalog()
        except TkhubError as e:
            raise JobRefused(503, e.user_message) from e
        return entries, await self.runner.inventory()

    async def selection(
        self, options: dict[str, Any], groups: Sequence[str], admin: bool
    ) -> Selection:
        """The spawn page's parser on a submit's options (the one parse of a job's
        selection); ``SelectionError`` as it says."""
        entries, inventory = await self.offer()
        choices = spawn_choices(entries, inventory, user_groups=groups, admin=admin)
        return parse_selection(normalize_params(options, strict=True), choices)

    async def submit(self, who: Requester, body: JobSubmit, owner: str | None = None) -> JobPublic:
        user = owner or who.name
        if owner and owner != who.name and not who.admin:
            raise JobRefused(403, "user: only admins submit jobs for other users")
        whose = "your" if user == who.name else f"{user}'s"
        try:
            notebook = notebook_path(self.runner.notebooks_dir(user), body.notebook, whose)
        except NotebookRefused as e:
            hint = ""
            if who.admin and owner is None:  # an admin's own folder is rarely the one meant
                hint = (
                    f" (the folder of {who.name}, who asked); to run a user's notebook, "
                    "name the user: tkhub jobs run NOTEBOOK --user NAME, or ?user=NAME"
                )
            raise JobRefused(400, f"{e}{hint}") from e
        options = body.selection_options()
        groups = sorted(who.groups) if user == who.name else []
        admin = who.admin and user == who.name
        try:
            chosen = await self.selection(options, groups, admin)
        except SelectionError as e:
            raise JobRefused(403 if e.forbidden else 400, str(e)) from e
        problem = self.runner.unusable(chosen)
        if problem:
            raise JobRefused(400, problem)
        with self.sessions() as session, session.begin():
            job = Job(
                user=user, notebook=str(notebook), output="", log="",
                environment=chosen.image.name, placement=chosen.placement.key,
                count=chosen.placement.count if chosen.placement.uses_gpu else 0,
                size=chosen.size, parameters=body.parameters, time_limit=body.time_limit,
                options={"selection": options, "groups": groups, "admin": admin},
                reason="queued",
            )  # fmt: skip
            session.add(job)
            session.flush()
            output, log_file = run_files(notebook, job.id)
            job.output, job.log = str(output), str(log_file)
        log.info(
            "job %s of %s: %s in %s on %s", job.id, user, notebook, job.environment, job.placement
        )
        return self.public(job, [])

    def visible(self, who: Requester, everyone: bool = False) -> list[JobPublic]:
        with self.sessions() as session:
            query = select(Job).order_by(Job.id.desc())
            if not (everyone and who.admin):
                query = query.where(Job.user == who.name)
            jobs = list(session.scalars(query.limit(500)))
            queue = self.queue(session)
        return [self.public(job, queue) for job in jobs]

    def one(self, who: Requester, job_id: int) -> JobPublic:
        with self.sessions() as session:
            job = self._own(session, who, job_id)
            return self.public(job, self.queue(session))

    def cancel(self, who: Requester, job_id: int) -> JobPublic:
        with self.sessions() as session, session.begin():
            job = self._own(session, who, job_id)
            if job.state not in ACTIVE:
                raise JobRefused(409, f"job {job_id} has already ended ({job.state})")
            job.cancel_requested = True
            job.reason = f"cancelled by {who.name}"
        return self.one(who, job_id)

    def _own(self, session: Session, who: Requester, job_id: int) -> Job:
        job = session.get(Job, job_id)
        if job is None or (job.user != who.name and not who.admin):
            raise JobRefused(404, f"job {job_id} does not exist")  # never "it is someone else's"
        return job

    @staticmethod
    def queue(session: Session) -> list[int]:
        return list(session.scalars(select(Job.id).where(Job.state == QUEUED).order_by(Job.id)))

    def public(self, job: Job, queue: list[int]) -> JobPublic:
        position = queue.index(job.id) + 1 if job.id in queue else None
        fields = {c: getattr(job, c) for c in JobPublic.model_fields if hasattr(job, c)}
        held = self.runner.held_position(job) if job.state == RUNNING else None
        if held is not None:  # submitted, but Kueue has not admitted it yet
            fields |= {"state": QUEUED, "reason": "waiting in the Kueue queue"}
            position = held
        return JobPublic.model_validate({**fields, "queue_position": position})

    # --- the queue ----------------------------------------------------------------------

    async def tick(self, start_queued: bool = True) -> bool:
        """Finish what ended, stop what was cancelled or ran out of time, start what can;
        whether a job was running (the app then looks again sooner). Starting a queued
        job reads the catalog, so the app asks for it only at the slower pace."""
        with self.sessions() as session:
            active = list(
                session.scalars(select(Job).where(Job.state.in_(ACTIVE)).order_by(Job.id))
            )
        offer: Offer | JobRefused | None = None  # read once, for every queued job
        for job in active:
            if job.state != RUNNING and not start_queued:
                continue
            try:
                if job.state == RUNNING:
                    await self._advance_running(job)
                    continue
                if job.cancel_requested:
                    self._finish(job.id, Outcome(CANCELLED, job.reason or "cancelled"))
                    continue
                if offer is None:
                    try:
                        offer = await self.offer()
                    except JobRefused as e:
                        offer = e
                await self._try_start(job, offer)
            except Exception:  # one job's trouble must not stall the queue
                log.exception("job %s", job.id)
        return any(job.state == RUNNING for job in active)

    async def _advance_running(self, job: Job) -> None:
        if job.cancel_requested:
            await self.runner.stop(job)
            self._finish(job.id, Outcome(CANCELLED, job.reason or "cancelled"))
            return
        outcome = await self.runner.poll(job)
        if isinstance(outcome, Requeue):
            await self.runner.stop(job)
            if job.requeues >= MAX_REQUEUES:  # what the cluster sees is not what tkhub sees
                self._finish(job.id, Outcome(FAILED, f"{outcome.reason}, {job.requeues + 1} "
                                                     "times: giving up"))  # fmt: skip
                return
            self._update(job.id, state=QUEUED, started=None, gpus=[], runner_ref={}, node="",
                         requeues=job.requeues + 1,
                         reason=f"back in the queue: {outcome.reason}")  # fmt: skip
            log.info("job %s back in the queue: %s", job.id, outcome.reason)
            return
        if outcome is not None:
            self._finish(job.id, outcome)
            return
        node = self.runner.placed_on(job)
        if node and node != job.node:
            self._update(job.id, node=node)
        # the limit counts from when the run began: not while Kueue still holds the Job
        started = self.runner.running_since(job)
        if started is not None and (now() - started).total_seconds() > job.time_limit:
            await self.runner.stop(job)
            self._finish(job.id, Outcome(FAILED, f"time limit of {job.time_limit} s reached"))

    async def _try_start(self, job: Job, offer: Offer | JobRefused) -> None:
        if isinstance(offer, JobRefused):  # the catalog does not answer
            self._update(job.id, reason=f"waiting: {offer.message}")
            return
        entries, inventory = offer
        try:
            chosen = recheck_placement(stored_selection(job, entries), inventory)
        except SelectionError as e:  # its environment or its GPUs went away while it waited
            self._finish(job.id, Outcome(FAILED, str(e)))
            return
        if chosen.placement.uses_gpu and self.runner.places_later and self._unplaced(job.id):
            self._update(job.id, reason=waiting_for(chosen.placement))
            return
        groups = list((job.options or {}).get("groups", []))
        result = await self.runner.start(job, chosen, groups)
        if isinstance(result, Started):
            self._update(job.id, state=RUNNING, started=now(), gpus=result.gpus,
                         runner_ref=result.ref, node=result.node, reason="running")  # fmt: skip
            log.info("job %s started, GPUs %s", job.id, ",".join(result.gpus) or "none")
        else:
            self._update(job.id, reason=result.reason)

    def _unplaced(self, job_id: int) -> list[int]:
        """Other GPU jobs started but not yet placed by the scheduler: their GPUs do not
        show as taken yet, so a GPU job started now would race them for the same GPUs."""
        with self.sessions() as session:
            return list(session.scalars(
                select(Job.id).where(Job.state == RUNNING, Job.count > 0, Job.node == "",
                                     Job.id != job_id)
            ))  # fmt: skip

    def _update(self, job_id: int, **values: Any) -> None:
        with self.sessions() as session, session.begin():
            job = session.get(Job, job_id)
            if job is not None:
                for name, value in values.items():
                    setattr(job, name, value)

    def _finish(self, job_id: int, outcome: Outcome) -> None:
        with self.sessions() as session, session.begin():
            job = session.get(Job, job_id)
            if job is None:
                return
            job.state, job.reason = outcome.state, outcome.reason
            job.error, job.failed_cell = outcome.error, outcome.failed_cell
            job.finished = now()
            if job.started is not None:
                job.duration = round((job.finished - as_utc(job.started)).total_seconds(), 3)
        log.info("job %s %s: %s", job_id, outcome.state, outcome.reason)
