"""The cluster jobs service's own queue (no Kueue) on the real control plane.

The jobs service (``python -m tkhub.kube.jobs_service``) runs as on a cluster: a
process of its own that the hub knows as an external service; the test starts it,
kills it as a crash would, and starts it again. The real scheduler and Job controller place
the Jobs' pods on kwok's gpu-l4 (one GPU), where each runs 3 s; stopping
kube-scheduler holds a created Job's pod unplaced for as long as a test needs. No
container runs, so a job ends "without a result": these tests read order and
placement, not notebooks' output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubproc import free_port
from kube_support import make_root, remove_root, seed_catalog, start_hub, stop_hub
from real_cluster import GPU, RealCluster, pod
from test_cluster_kueue import KueueJobs, _healthy, jobs_config
from test_cluster_spawn import volumes
from test_kube_jobs import JOBS_TOKEN, write_notebook

ENDED = ("succeeded", "failed")


class QueueJobs(KueueJobs):
    """The jobs service as its own process (``env``: what the chart's Deployment sets)."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def pods(self, job_id: int) -> list[dict[str, Any]]:
        return self.cluster.items(f"/api/v1/namespaces/{self.namespace}/pods",
                                  labelSelector=f"job-name=tkhub-job-{job_id}")  # fmt: skip

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(self.call("alice", "GET", f"/jobs/{job_id}").json())

    def submit_gpu(self) -> int:
        write_notebook(self.notebooks("alice"), "q.ipynb", "print('hello')")
        return int(self.submit("alice", "q.ipynb", image="gpu-lab", gpu="model:NVIDIA-L4")["id"])

    def start_service(self) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tkhub.kube.jobs_service"], env=self.env,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while not _healthy(self):
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, self.log_path.read_text()[-3000:]
            time.sleep(0.2)

    def stop_service(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)

    def restart_service(self) -> None:
        """Kill the service's process, as a crash would, and start it again."""
        self.stop_service(signal.SIGKILL)
        self.start_service()


@pytest.fixture(scope="module")
def queue_jobs(cluster: RealCluster) -> Iterator[QueueJobs]:
    root = make_root()
    with cluster.namespace("jobq") as namespace:
        cluster.apply(*volumes(namespace))
        port, notebooks = free_port(), root / "notebooks"
        extra = jobs_config(cluster, namespace, root, port, notebooks)
        # external, as the chart registers it: the test runs its process
        extra += "\njobs = c.JupyterHub.services[-1]\njobs.pop('command')\n"
        extra += "print('JOBS-ENV', json.dumps(jobs.pop('environment')))\n"
        hub, proc = start_hub(cluster, extra=extra, namespace=namespace)
        service = QueueJobs(hub, cluster, port, namespace, notebooks)
        service.log_path = root / "jobs.log"
        try:
            seed_catalog(hub)
            said = next(line for line in hub.log().splitlines() if line.startswith("JOBS-ENV"))
            service.env = {**os.environ, **json.loads(said.removeprefix("JOBS-ENV ")),
                           "JUPYTERHUB_API_URL": hub.api_url, "JUPYTERHUB_API_TOKEN": JOBS_TOKEN,
                           "JUPYTERHUB_CLIENT_ID": "service-jobs",
                           "JUPYTERHUB_SERVICE_PREFIX": "/services/jobs/"}  # fmt: skip
            service.start_service()
            yield service
        finally:
            service.stop_service()
            stop_hub(hub, proc)
            remove_root(root)


def _completed_at(pod: dict[str, Any]) -> str:
    """When the pod's run ended (kwok's pod-complete stage marks it not Ready then)."""
    for condition in pod["status"].get("conditions") or []:
        if condition["type"] == "Ready" and condition.get("reason") == "PodCompleted":
            return str(condition["lastTransitionTime"])
    raise AssertionError(f"pod not completed: {pod['status']}")


@pytest.fixture
def scheduler_stopped(cluster: RealCluster, queue_jobs: QueueJobs) -> Iterator[Any]:
    """Stops kube-scheduler; ``start()`` (or the end of the test) starts it again.

    A scheduler just started may try a waiting pod before it has seen the pod's claims
    ("pod has unbound immediate PersistentVolumeClaims. not found") and then leaves it
    for minutes; an update of the claims makes it try again at once."""
    state = {"running": False}

    def start() -> None:
        if not state["running"]:
            cluster.component("start", "kube-scheduler")
            state["running"] = True
            cluster.kubectl("annotate", "pvc", "--all", "-n", queue_jobs.namespace,
                            "--overwrite", f"tkhub.test/nudged={time.time()}")  # fmt: skip

    cluster.component("stop", "kube-scheduler")
    try:
        yield start
    finally:
        start()


def test_gpu_jobs_keep_their_order_across_a_restart_of_the_service(
    queue_jobs: QueueJobs, scheduler_stopped: Any
):
    """The first job's Job is created while the scheduler is down, so its pod is not
    placed and its GPU shows free; the service restarts then: the second job must
    still wait for the first, and all three run one after another, in order."""
    jobs = queue_jobs
    ids = [jobs.submit_gpu() for _ in range(3)]
    jobs.cluster.wait_for("the first job to start", lambda: jobs.job(ids[0])["state"] == "running")
    jobs.restart_service()
    time.sleep(3)  # several rounds of the restarted service's queue
    now = [jobs.job(i) for i in ids]
    assert [j["state"] for j in now] == ["running", "queued", "queued"], now
    assert now[0]["node"] == ""  # not placed: its GPU does not show as taken
    assert now[1]["reason"] == "waiting for NVIDIA-L4 to be free", now[1]
    assert jobs.k8s_job(ids[1]) is None  # nothing started onto the same GPU

    scheduler_stopped()
    ended = [jobs.wait("alice", i, timeout=120) for i in ids]
    said = [(j["id"], j["state"], j["reason"], j["node"]) for j in ended]
    assert all("No node" not in j["reason"] for j in ended), said  # none lost a race
    assert all(j["node"] == "gpu-l4" for j in ended), ended
    assert [j["started"] for j in ended] == sorted(j["started"] for j in ended)  # in order

    # one after another on the GPU: each Job made only once the one before had completed
    def completed() -> list[dict[str, Any]]:
        found = [(jobs.k8s_job(i) or {}).get("status", {}) for i in ids]
        return found if all("completionTime" in status for status in found) else []

    jobs.cluster.wait_for("the Jobs to be complete", completed, 30)
    pods = [jobs.pods(i) for i in ids]
    assert all(len(found) == 1 for found in pods), pods
    spans = [(found[0]["metadata"]["creationTimestamp"], _completed_at(found[0])) for found in pods]
    for (_, completed_at), (created, _) in zip(spans, spans[1:], strict=False):
        assert completed_at <= created, spans


def test_a_job_that_loses_its_gpu_to_a_server_goes_back_to_the_queue_and_runs(
    queue_jobs: QueueJobs, scheduler_stopped: Any
):
    """The check saw the GPU free; a pod bound straight to the node (as a server that
    won the race would be) takes it before the scheduler places the job's pod."""
    jobs, cluster, ns = queue_jobs, queue_jobs.cluster, queue_jobs.namespace
    job_id = jobs.submit_gpu()
    cluster.wait_for("the job to start", lambda: jobs.job(job_id)["state"] == "running")
    winner = pod("winner", limits={GPU: "1"}, gpu=True, nodeName="gpu-l4")
    cluster.apply({**winner, "metadata": {"name": "winner", "namespace": ns}})
    first_uid = (jobs.k8s_job(job_id) or {})["metadata"]["uid"]
    scheduler_stopped()

    def requeued() -> bool:
        job = jobs.job(job_id)
        return job["state"] == "queued" and job["reason"].startswith("back in the queue")

    cluster.wait_for("the job back in the queue", requeued, 60)  # after the 10 s grace
    assert jobs.job(job_id)["queue_position"] == 1
    cluster.kubectl("delete", "pod", "winner", "-n", ns, "--wait=true")

    ended = jobs.wait("alice", job_id, timeout=90)
    assert "No node" not in ended["reason"], ended  # it ran: kwok ends it without a result
    assert ended["state"] in ENDED and ended["node"] == "gpu-l4", ended
    again = jobs.k8s_job(job_id)  # a Job that ran is kept: a new one, not the first
    assert again is not None and again["metadata"]["uid"] != first_uid
    assert [p["spec"].get("nodeName") for p in jobs.pods(job_id)] == ["gpu-l4"]


def test_a_job_whose_kubernetes_job_is_deleted_behind_its_back_ends_saying_so(
    queue_jobs: QueueJobs, scheduler_stopped: Any
):
    """The API answers 404 for the Job (an error status the client does not raise for
    a raw read): the job ends with that reason, not running until its time limit."""
    jobs, cluster = queue_jobs, queue_jobs.cluster
    job_id = jobs.submit_gpu()
    cluster.wait_for("the job to start", lambda: jobs.job(job_id)["state"] == "running")
    cluster.kubectl("delete", "job", f"tkhub-job-{job_id}", "-n", jobs.namespace,
                    "--cascade=background", "--wait=true")  # fmt: skip
    ended = jobs.wait("alice", job_id, timeout=30)
    assert ended["state"] == "failed" and ended["reason"] == "its Kubernetes Job was deleted"
