"""The queue with the local runner and the real GPU ledger, NVML faked at its boundary.

Only the process launch is replaced (by a ``sleep`` the test can end), so what is
tested is the service's queue and the ledger servers use: a job and a server never
share an exclusive GPU, and a waiting job starts when its GPU frees.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tkhub.catalog.schemas import ImagePublic
from tkhub.gpu import nvml
from tkhub.gpu.model import Placement
from tkhub.jobs import db
from tkhub.jobs.models import Job
from tkhub.jobs.schemas import JobSubmit
from tkhub.jobs.service import JobRefused, JobsService, Requester
from tkhub.local.inventory import local_inventory
from tkhub.local.jobs_runner import LocalRunner, job_key
from tkhub.selection import Selection
from tkhub.settings import Settings

H100 = "NVIDIA H100 80GB HBM3"
ENTRY = ImagePublic(name="py", kind="local", python=sys.executable, gpu="optional", default=True)


def gpus(n: int) -> list[nvml.NvmlDevice]:
    return [nvml.NvmlDevice(str(i), f"GPU-{i}", H100, 81559, 0, 0) for i in range(n)]


class SleepingRunner(LocalRunner):
    """The local runner with a ``sleep`` for each run, and the environment it would get."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.launched: dict[int, dict[str, str]] = {}

    def _launch(self, job: Job, selection: Selection, devices: Any, groups: list[str]):
        self.launched[job.id] = self._environment(
            job, Path(sys.executable), devices, groups, "someone"
        )
        proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
        self._children[proc.pid] = proc
        return proc.pid, psutil.Process(proc.pid).create_time()


ALICE = Requester("alice", admin=False, groups=frozenset())


async def read_catalog() -> list[ImagePublic]:
    return [ENTRY]


def make_service(data_dir: Path) -> JobsService:
    """A jobs service on a fresh data directory where alice has ``train.ipynb``."""
    settings = Settings(data_dir=data_dir)
    notebooks = settings.users_dir / "alice" / "thinkube" / "notebooks"
    notebooks.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), notebooks / "train.ipynb")
    engine = db.make_engine(settings.jobs_database_url)
    db.upgrade(engine)
    return JobsService(db.session_factory(engine), SleepingRunner(settings), read_catalog)


def end_runs(service: JobsService) -> None:
    for child in service.runner._children.values():
        child.kill()
        child.wait()


@pytest.fixture
def service(tmp_path: Path, fake_nvml) -> JobsService:
    jobs = make_service(tmp_path)
    yield jobs
    end_runs(jobs)


async def submit(service: JobsService, **body: Any) -> int:
    job = await service.submit(ALICE, JobSubmit(notebook="train.ipynb", **body))
    return job.id


async def test_a_job_queues_behind_a_server_and_starts_on_its_gpu_when_it_stops(
    service: JobsService, fake_nvml
):
    fake_nvml(gpus(1))
    ledger = service.runner.ledger
    ledger.allocate("alice/", Placement("auto", count=1), local_inventory())

    job_id = await submit(service, gpu="auto")
    await service.tick()
    waiting = service.one(ALICE, job_id)
    assert waiting.state == "queued" and waiting.queue_position == 1
    assert waiting.reason == "waiting for 1 free GPU"
    assert ledger.holders() == {"GPU-0": ("alice/",)}

    ledger.release("alice/")  # the server stops
    await service.tick()
    running = service.one(ALICE, job_id)
    assert running.state == "running" and running.gpus == ["GPU-0"]
    assert running.queue_position is None
    assert ledger.holders() == {"GPU-0": (job_key(job_id),)}
    assert service.runner.launched[job_id]["CUDA_VISIBLE_DEVICES"] == "GPU-0"

    with pytest.raises(Exception):  # noqa: B017 (the spawner's refusal, whatever its wording)
        ledger.allocate("bob/", Placement("auto", count=1), local_inventory())
    service.cancel(ALICE, job_id)
    await service.tick()
    assert service.one(ALICE, job_id).state == "cancelled"
    assert ledger.holders() == {}


async def test_queue_positions_follow_submit_order(service: JobsService, fake_nvml):
    fake_nvml(gpus(1))
    first, second, third = [await submit(service, gpu="auto") for _ in range(3)]
    await service.tick()
    assert service.one(ALICE, first).state == "running"
    assert [service.one(ALICE, j).queue_position for j in (second, third)] == [1, 2]
    service.cancel(ALICE, first)
    await service.tick()
    await service.tick()
    assert service.one(ALICE, second).state == "running"
    assert service.one(ALICE, third).queue_position == 1


async def test_a_cpu_job_never_waits_for_a_gpu(service: JobsService, fake_nvml):
    fake_nvml(gpus(1))
    service.runner.ledger.allocate("alice/", Placement("auto", count=1), local_inventory())
    job_id = await submit(service, gpu="none")
    await service.tick()
    job = service.one(ALICE, job_id)
    assert job.state == "running" and job.gpus == []
    assert service.runner.launched[job_id]["CUDA_VISIBLE_DEVICES"] == ""


async def test_a_gpu_that_does_not_exist_is_refused_with_the_spawn_pages_words(
    service: JobsService, fake_nvml
):
    fake_nvml(gpus(1))
    with pytest.raises(JobRefused) as refused:
        await submit(service, gpu="device:7")
    assert refused.value.status == 400 and "gpu" in refused.value.message
    with pytest.raises(JobRefused) as refused:
        await submit(service, gpu="auto", count=3)
    assert refused.value.status == 400
    assert service.visible(ALICE) == []  # nothing recorded


async def test_a_jobs_selection_is_parsed_once_and_read_back_from_its_row(
    service: JobsService, fake_nvml, monkeypatch
):
    """Parsed at submit; the start reads the row (a bare device index stored as its
    key), never the submitted options again."""
    import tkhub.jobs.service as service_module

    fake_nvml(gpus(2))
    parses: list[object] = []
    parse = service_module.parse_selection
    monkeypatch.setattr(service_module, "parse_selection",
                        lambda *a: parses.append(a) or parse(*a))  # fmt: skip
    job_id = await submit(service, gpu="1", size="half")
    stored = service.one(ALICE, job_id)
    assert (stored.placement, stored.count, stored.size) == ("device:1", 1, "half")
    for _ in range(3):
        await service.tick()
    assert service.one(ALICE, job_id).gpus == ["GPU-1"]
    assert len(parses) == 1


async def test_an_admins_job_on_an_environment_of_other_groups_runs(tmp_path: Path, fake_nvml):
    """Admins see every environment at submit; the start must not judge them as a user."""
    fake_nvml([])
    team_only = ENTRY.model_copy(update={"allowed_groups": ["gpu-team"]})
    service = make_service(tmp_path)

    async def catalog() -> list[ImagePublic]:
        return [team_only]

    service.catalog = catalog
    admin = Requester("alice", admin=True, groups=frozenset())
    try:
        job = await service.submit(admin, JobSubmit(notebook="train.ipynb"))
        await service.tick()
        assert service.one(admin, job.id).state == "running", service.one(admin, job.id)
    finally:
        end_runs(service)


async def test_a_queued_job_whose_environment_was_removed_fails_saying_so(
    service: JobsService, fake_nvml
):
    fake_nvml(gpus(1))
    service.runner.ledger.allocate("alice/", Placement("auto", count=1), local_inventory())
    job_id = await submit(service, gpu="auto")
    await service.tick()
    assert service.one(ALICE, job_id).state == "queued"

    async def emptied() -> list[ImagePublic]:
        return []

    service.catalog = emptied
    await service.tick()
    ended = service.one(ALICE, job_id)
    assert ended.state == "failed" and ended.reason == "image: the environment 'py' was removed"


async def test_a_job_that_keeps_losing_its_gpus_is_failed_not_requeued_for_ever(
    service: JobsService, fake_nvml, monkeypatch
):
    """A runner that places later (the cluster) reports each lost race; the service
    requeues the job in its place a few times, then gives up saying why."""
    from tkhub.jobs.runner import Requeue
    from tkhub.jobs.service import MAX_REQUEUES

    fake_nvml(gpus(1))

    async def lost(job: Job) -> Requeue:
        return Requeue("another workload took its GPUs before its pod was placed")

    monkeypatch.setattr(service.runner, "poll", lost)
    job_id = await submit(service, gpu="auto")
    for _ in range(MAX_REQUEUES):
        await service.tick()  # started
        await service.tick()  # lost: back in the queue
        back = service.one(ALICE, job_id)
        assert back.state == "queued" and back.queue_position == 1, back
        assert back.reason.startswith("back in the queue: another workload"), back
        assert service.runner.ledger.holders() == {}  # the attempt's GPU freed
    await service.tick()
    await service.tick()
    ended = service.one(ALICE, job_id)
    assert ended.state == "failed", ended
    assert ended.reason.endswith(f"{MAX_REQUEUES + 1} times: giving up"), ended


async def test_a_job_past_its_time_limit_is_stopped_and_failed(service: JobsService, fake_nvml):
    fake_nvml([])
    job_id = await submit(service, time_limit=1)
    await service.tick()
    pid = _pid(service, job_id)
    with service.sessions() as session, session.begin():
        job = session.get(Job, job_id)
        job.started = job.started.replace(year=job.started.year - 1)
    await service.tick()
    ended = service.one(ALICE, job_id)
    assert ended.state == "failed" and ended.reason == "time limit of 1 s reached"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _pid(service: JobsService, job_id: int) -> int:
    with service.sessions() as session:
        job = session.get(Job, job_id)
        return int(job.runner_ref["pid"])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    devices=st.integers(min_value=1, max_value=3),
    steps=st.lists(st.tuples(st.sampled_from(["submit", "server", "end"]),
                             st.integers(min_value=1, max_value=2)),
                   min_size=1, max_size=12),
)  # fmt: skip
async def test_jobs_and_servers_never_share_an_exclusive_gpu(
    tmp_path_factory, fake_nvml, devices: int, steps: list[tuple[str, int]]
):
    fake_nvml(gpus(devices))
    service = make_service(tmp_path_factory.mktemp("prop"))
    servers = 0
    try:
        for action, count in steps:
            if action == "submit":
                try:
                    await submit(service, gpu="auto", count=count)
                except JobRefused:
                    pass  # more GPUs than exist: refused at submit, as on the spawn page
            elif action == "server":
                servers += 1
                try:
                    service.runner.ledger.allocate(f"user{servers}/",
                                                   Placement("auto", count=count),
                                                   local_inventory())  # fmt: skip
                except Exception:  # noqa: BLE001 (the spawn would be refused: nothing held)
                    pass
            else:
                running = [j for j in service.visible(ALICE) if j.state == "running"]
                if running:
                    service.cancel(ALICE, running[0].id)
            await service.tick()
            holders = service.runner.ledger.holders()
            assert all(len(keys) <= 1 for keys in holders.values()), holders
            for job in service.visible(ALICE):
                if job.state == "running":
                    assert holders and all(holders[g] == (job_key(job.id),) for g in job.gpus)
    finally:
        end_runs(service)


async def test_tkhub_up_keeps_the_gpus_of_jobs_still_running(tmp_path: Path, fake_nvml):
    """A restarted ``tkhub up`` frees what dead servers and jobs held, never a live job's:
    the runner binds a job's GPUs to its process when it starts it."""
    from tkhub.local.up import reconcile_gpus

    fake_nvml(gpus(3))
    service = make_service(tmp_path)
    ledger = service.runner.ledger
    try:
        first, second = [await submit(service, gpu="auto") for _ in range(2)]
        await service.tick()
        ledger.allocate("gone/", Placement("auto", count=1), local_inventory())
        died = service.runner._children.pop(_pid(service, second))
        died.kill()
        died.wait()
        dropped = reconcile_gpus(Settings(data_dir=tmp_path))
    finally:
        end_runs(service)
    assert dropped == ["gone/", job_key(second)]
    assert list(ledger.holders().values()) == [(job_key(first),)]
