"""The cluster jobs service's own queue (no Kueue) on the real control plane.

The service runs in the test's process, built as its Deployment builds it
(``tkhub.kube.jobs_service.build``) on a database of the test's, so the test drives
its ticks and restarts it by building it again on the same database. The real
scheduler and Job controller place the Jobs' pods on kwok's gpu-l4 (one GPU), where
each runs 3 s. No container runs, so a job ends "without a result": these tests
read order and placement, not notebooks' output.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jobs_client import notebook_of
from kube_support import HUB_IMAGE, LAB_IMAGE, make_root, remove_root
from kubernetes_asyncio import config
from real_cluster import GPU, RealCluster, pod
from test_cluster_spawn import volumes

import tkhub.kube.jobs_runner
from tkhub.catalog.schemas import ImagePublic
from tkhub.jobs.schemas import JobPublic, JobSubmit
from tkhub.jobs.service import JobsService, Requester
from tkhub.kube.jobs_runner import KubeRunner
from tkhub.kube.jobs_service import build

ALICE = Requester("alice", admin=False, groups=frozenset())
GPU_LAB = ImagePublic(name="gpu-lab", display_name="GPU Lab", image=LAB_IMAGE, gpu="required")
ON_L4 = {"image": "gpu-lab", "gpu": "model:NVIDIA-L4"}


class Service:
    """The jobs service of one namespace; ``restart`` builds it again on its database."""

    def __init__(self, cluster: RealCluster, namespace: str, root: Path) -> None:
        self.cluster, self.namespace, self.root = cluster, namespace, root
        self.notebooks = root / "notebooks"
        (self.notebooks / "alice").mkdir(parents=True)
        nbformat.write(notebook_of("print('hello')"), self.notebooks / "alice" / "q.ipynb")
        self.jobs: JobsService | None = None

    async def start(self) -> JobsService:
        env = {
            "TKHUB_NAMESPACE": self.namespace, "TKHUB_JOBS_RUNNER_IMAGE": HUB_IMAGE,
            "TKHUB_JOBS_DATABASE_URL": f"sqlite:///{self.root}/jobs.sqlite",
            "TKHUB_JOBS_NOTEBOOKS": str(self.notebooks),
            "TKHUB_CATALOG_URL": "http://127.0.0.1:9/unused",
        }  # fmt: skip
        jobs, _, _ = build(env)

        async def catalog() -> list[ImagePublic]:
            return [GPU_LAB]

        jobs.catalog = catalog  # the catalog service is not what these tests are about
        runner = jobs.runner
        assert isinstance(runner, KubeRunner)
        runner._api = await config.new_client_from_config(config_file=str(self.cluster.kubeconfig))
        self.jobs = jobs
        return jobs

    async def restart(self) -> JobsService:
        await self.close()
        return await self.start()

    async def close(self) -> None:
        if self.jobs is not None:
            runner = self.jobs.runner
            assert isinstance(runner, KubeRunner)
            await runner.close()
            self.jobs = None

    def k8s_job(self, job_id: int) -> dict[str, Any] | None:
        name = f"tkhub-job-{job_id}"
        return self.cluster.get(f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}")

    def job_pods(self, job_id: int) -> list[dict[str, Any]]:
        return self.cluster.items(
            f"/api/v1/namespaces/{self.namespace}/pods",
            labelSelector=f"job-name=tkhub-job-{job_id}",
        )


@pytest.fixture
def namespace(cluster: RealCluster) -> Iterator[str]:
    with cluster.namespace("jobq") as name:
        cluster.apply(*volumes(name))
        yield name


@pytest.fixture
async def service(cluster: RealCluster, namespace: str) -> AsyncIterator[Service]:
    root = make_root()
    service = Service(cluster, namespace, root)
    await service.start()
    try:
        yield service
    finally:
        await service.close()
        remove_root(root)


async def submit(jobs: JobsService) -> int:
    return (await jobs.submit(ALICE, JobSubmit(notebook="q.ipynb", **ON_L4))).id


def states(jobs: JobsService, ids: list[int]) -> list[JobPublic]:
    return [jobs.one(ALICE, i) for i in ids]


async def tick_until(service: Service, what: str, done: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert service.jobs is not None
        await service.jobs.tick()
        if done():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def test_gpu_jobs_keep_their_order_across_a_restart_of_the_service(
    service: Service, cluster: RealCluster
):
    """The first job's Job is created while the scheduler is down, so its pod is not
    placed and its GPU shows free; the service restarts then: the second job must
    still wait for the first, and all three run one after another, in order."""
    jobs = service.jobs
    assert jobs is not None
    ids = [await submit(jobs) for _ in range(3)]
    cluster.component("stop", "kube-scheduler")
    try:
        await jobs.tick()
        assert [j.state for j in states(jobs, ids)] == ["running", "queued", "queued"]
        jobs = await service.restart()
        for _ in range(3):
            await jobs.tick()
        now = states(jobs, ids)
        assert [j.state for j in now] == ["running", "queued", "queued"], now
        assert now[0].node == ""  # not placed: its GPU does not show as taken
        assert now[1].reason == "waiting for NVIDIA-L4 to be free"
        assert service.k8s_job(ids[1]) is None  # nothing started onto the same GPU
    finally:
        cluster.component("start", "kube-scheduler")

    def all_ended() -> bool:
        return all(j.state in ("succeeded", "failed") for j in states(jobs, ids))

    await tick_until(service, "all three jobs to end", all_ended, timeout=120)
    ended = states(jobs, ids)
    assert all("No node" not in j.reason for j in ended), ended  # none lost a race
    spans = [(j.started, j.finished) for j in ended]
    assert all(isinstance(s, datetime) and isinstance(f, datetime) for s, f in spans)
    for (_, finished), (started, _) in zip(spans, spans[1:], strict=False):
        assert finished <= started, spans  # one after another, in submission order


async def test_a_job_that_loses_its_gpu_to_a_server_goes_back_to_the_queue_and_runs(
    service: Service, cluster: RealCluster, namespace: str, monkeypatch
):
    """The check saw the GPU free; a pod bound straight to the node (as a server that
    won the race would be) takes it before the scheduler places the job's pod."""
    monkeypatch.setattr(tkhub.kube.jobs_runner, "UNSCHEDULABLE_GRACE_SECONDS", 2.0)
    jobs = service.jobs
    assert jobs is not None
    job_id = await submit(jobs)
    cluster.component("stop", "kube-scheduler")
    try:
        await jobs.tick()
        assert jobs.one(ALICE, job_id).state == "running"
        winner = pod("winner", limits={GPU: "1"}, gpu=True, nodeName="gpu-l4")
        cluster.apply({**winner, "metadata": {"name": "winner", "namespace": namespace}})
    finally:
        cluster.component("start", "kube-scheduler")
    first_uid = (service.k8s_job(job_id) or {}).get("metadata", {}).get("uid")

    def requeued() -> bool:
        job = jobs.one(ALICE, job_id)
        return job.state == "queued" and job.reason.startswith("back in the queue")

    await tick_until(service, "the job back in the queue", requeued, timeout=60)
    assert jobs.one(ALICE, job_id).queue_position == 1
    cluster.kubectl("delete", "pod", "winner", "-n", namespace, "--wait=true")

    def ran() -> bool:
        return jobs.one(ALICE, job_id).state in ("succeeded", "failed")

    await tick_until(service, "the job to run again and end", ran, timeout=90)
    ended = jobs.one(ALICE, job_id)
    assert "No node" not in ended.reason, ended  # it ran: kwok ends it without a result
    assert ended.node == "gpu-l4", ended
    again = service.k8s_job(job_id)  # a Job that ran kept: a new one, not the first
    assert again is not None and again["metadata"]["uid"] != first_uid
    assert [p["spec"].get("nodeName") for p in service.job_pods(job_id)] == ["gpu-l4"]
