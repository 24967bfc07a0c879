"""GPU jobs through the real Kueue on the real control plane.

A real hub runs the cluster's jobs service (``python -m tkhub.kube.jobs_service``)
with ``TKHUB_JOBS_QUEUE`` naming a LocalQueue; its ClusterQueue has a quota of one
``nvidia.com/gpu``. Kueue's webhook suspends each Job, Kueue admits them one at a
time, the real Job controller and kwok run their pods. No container runs, so a job
ends "without a result": these tests read the order, the positions tkhub shows,
and the time limit, not the notebook's output.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubproc import free_port
from kube_support import HUB_IMAGE, make_root, remove_root, seed_catalog, start_hub, stop_hub
from real_cluster import GPU, GPU_TOLERATION, RealCluster
from test_cluster_spawn import volumes
from test_kube_jobs import JOBS_CONFIG, JOBS_TOKEN, Jobs, write_notebook

from tkhub.jobs import SERVER_TOKEN_SCOPES
from tkhub.kube.names import Names

QUEUE = "gpu-jobs"


def kueue_objects(namespace: str) -> list[dict[str, Any]]:
    cq = f"{namespace}-gpus"
    quota = [{"name": "cpu", "nominalQuota": "64"}, {"name": "memory", "nominalQuota": "1Ti"},
             {"name": GPU, "nominalQuota": "1"}]  # fmt: skip
    return [
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
         "metadata": {"name": "default-flavor"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": cq},
         "spec": {"namespaceSelector": {}, "queueingStrategy": "StrictFIFO",
                  "resourceGroups": [{"coveredResources": ["cpu", "memory", GPU],
                                      "flavors": [{"name": "default-flavor",
                                                   "resources": quota}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
         "metadata": {"name": QUEUE, "namespace": namespace}, "spec": {"clusterQueue": cq}},
    ]  # fmt: skip


class KueueJobs(Jobs):
    def __init__(self, hub: Any, cluster: RealCluster, port: int, namespace: str,
                 notebooks: Path) -> None:  # fmt: skip
        self.hub, self.cluster, self.namespace, self._notebooks = hub, cluster, namespace, notebooks
        self.url = f"http://127.0.0.1:{port}/services/jobs/api/v1"

    def notebooks(self, user: str) -> Path:
        return self._notebooks / user

    def k8s_job(self, job_id: int) -> dict[str, Any] | None:
        name = Names(self.namespace).job(job_id)
        return self.cluster.get(f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}")


def jobs_config(cluster: RealCluster, namespace: str, root: Path, port: int,
                notebooks: Path) -> str:  # fmt: skip
    """The hub configuration that adds the cluster's jobs service on ``port``."""
    notebooks.mkdir()
    return JOBS_CONFIG.format(
        port=port, token=JOBS_TOKEN, python=sys.executable, namespace=namespace,
        root=root, notebooks=str(notebooks), runner=HUB_IMAGE,
        kubeconfig=str(cluster.kubeconfig), scopes=SERVER_TOKEN_SCOPES,
    )  # fmt: skip


@pytest.fixture(scope="module")
def kueue_jobs(cluster: RealCluster) -> Iterator[KueueJobs]:
    root = make_root()
    with cluster.namespace("kueue") as namespace:
        cluster.apply(*volumes(namespace), *kueue_objects(namespace))
        port, notebooks = free_port(), root / "notebooks"
        extra = jobs_config(cluster, namespace, root, port, notebooks)
        extra += f'\nc.JupyterHub.services[-1]["environment"]["TKHUB_JOBS_QUEUE"] = "{QUEUE}"\n'
        hub, proc = start_hub(cluster, extra=extra, namespace=namespace)
        try:
            seed_catalog(hub)
            service = KueueJobs(hub, cluster, port, namespace, notebooks)
            cluster.wait_for("the jobs service", lambda: _healthy(service), 60)
            yield service
        finally:
            stop_hub(hub, proc)
            cluster.kubectl("delete", "clusterqueue", f"{namespace}-gpus", check=False)
            remove_root(root)


def _healthy(service: Jobs) -> bool:
    try:
        return httpx.get(service.url.removesuffix("api/v1") + "health").status_code == 200
    except httpx.HTTPError:
        return False


def gpu_job(jobs: KueueJobs, user: str, name: str, **body: Any) -> dict[str, Any]:
    write_notebook(jobs.notebooks(user), name, "print('hello')")
    return jobs.submit(user, name, image="gpu-lab", gpu="model:NVIDIA-L4", **body)


def test_gpu_jobs_wait_in_kueue_and_are_admitted_in_order(kueue_jobs: KueueJobs):
    submitted = [gpu_job(kueue_jobs, "alice", f"q{i}.ipynb") for i in range(3)]
    ids = [job["id"] for job in submitted]

    def positions() -> list[Any]:
        seen = [kueue_jobs.call("alice", "GET", f"/jobs/{i}").json() for i in ids]
        return [(j["state"], j["queue_position"]) for j in seen]

    # one holds the ClusterQueue's only GPU; the others wait, positions from Kueue
    expected = [("running", None), ("queued", 1), ("queued", 2)]
    kueue_jobs.cluster.wait_for(f"{expected}", lambda: positions() == expected, 30)
    started: dict[int, str] = {}  # each Job's startTime (admission), read while it exists

    def all_admitted() -> bool:
        for job_id in ids:
            found = kueue_jobs.k8s_job(job_id) or {}
            if begun := found.get("status", {}).get("startTime"):
                started.setdefault(job_id, begun)
        return len(started) == len(ids)

    kueue_jobs.cluster.wait_for("every job admitted", all_admitted, 90)
    for job_id in ids:
        kueue_jobs.wait("alice", job_id, timeout=90)
    in_order = [started[i] for i in ids]
    assert in_order == sorted(in_order), in_order  # admitted in submission order
    pods = kueue_jobs.cluster.items(f"/api/v1/namespaces/{kueue_jobs.namespace}/pods")
    assert {p["spec"]["nodeName"] for p in pods if "job-name" in p["metadata"]["labels"]} == {
        "gpu-l4"}  # fmt: skip


def test_the_time_limit_counts_from_admission(kueue_jobs: KueueJobs):
    """A blocker holds the quota for 12 s; a job with a 6 s limit waits behind it
    longer than its limit, is admitted, and is not ended for time."""
    cluster, ns = kueue_jobs.cluster, kueue_jobs.namespace
    blocker = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "blocker", "namespace": ns,
                            "labels": {"kueue.x-k8s.io/queue-name": QUEUE}},
               "spec": {"template": {
                   "metadata": {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "12s"}},
                   "spec": {"restartPolicy": "Never", "tolerations": [GPU_TOLERATION],
                            "containers": [{"name": "c", "image": "registry.invalid/x:1",
                                            "resources": {"limits": {GPU: "1"}}}]}}}}  # fmt: skip
    cluster.apply(blocker)
    cluster.wait_for("the blocker to be admitted", lambda: not (
        cluster.get(f"/apis/batch/v1/namespaces/{ns}/jobs/blocker") or {}).get("spec", {}).get(
        "suspend", True))  # fmt: skip
    job = gpu_job(kueue_jobs, "alice", "limited.ipynb", time_limit=6)
    time.sleep(8)  # longer than its limit, still held by Kueue
    held = kueue_jobs.call("alice", "GET", f"/jobs/{job['id']}").json()
    assert held["state"] == "queued" and held["queue_position"] == 1, held
    done = kueue_jobs.wait("alice", job["id"], timeout=60)
    assert "time limit" not in done["reason"], done
    assert done["reason"] == "the run ended without a result (it was killed)", done  # kwok's pod
    k8s = kueue_jobs.k8s_job(job["id"]) or {}
    blocker_done = cluster.get(f"/apis/batch/v1/namespaces/{ns}/jobs/blocker") or {}
    assert k8s["status"]["startTime"] >= blocker_done["status"]["completionTime"]
