"""tkhub's GPU accounting and pod reading against the real kube-scheduler.

The spawn page says what is free from ``read_inventory`` (real Node and Pod
objects from kube-apiserver); kube-scheduler decides what fits by its own rules.
For each shape of workload, ``free`` GPUs must schedule and one more must not —
and a wrong count in tkhub must show. ``podstatus`` is then checked on what the
scheduler and kwok's kubelet stages really wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio import client, config
from real_cluster import GPU, GPU_TOLERATION, RealCluster, pod, settle, unschedulable_message

import tkhub.gpu.kubernetes
from tkhub.gpu.model import Inventory
from tkhub.kube.inventory import read_inventory
from tkhub.kube.podstatus import start_failure

NODE = "gpu-h100"  # two GPUs (cluster/nodes.yaml)


def container(name: str, gpus: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "registry.invalid/work:1",
            "resources": {"limits": {GPU: str(gpus)}}, **extra}  # fmt: skip


def on_node(spec: dict[str, Any]) -> dict[str, Any]:
    return {"nodeSelector": {"kubernetes.io/hostname": NODE}, "tolerations": [GPU_TOLERATION],
            "restartPolicy": "Never", **spec}  # fmt: skip


WORKLOADS: dict[str, tuple[str, dict[str, Any]]] = {
    "one container, one GPU": ("Pod", {"containers": [container("a", 1)]}),
    "two containers, one each": ("Pod", {"containers": [container("a", 1), container("b", 1)]}),
    "an init container needing more than the containers": (
        "Pod", {"initContainers": [container("prepare", 2)], "containers": [container("a", 1)]}),
    "a sidecar init container adds to the containers": (
        "Pod", {"initContainers": [container("side", 1, restartPolicy="Always")],
                "containers": [container("a", 1)]}),
    "a finished job's pod holds nothing": ("Job", {"containers": [container("a", 2)]}),
    "a pod that cannot be placed holds nothing": ("Pod", {"containers": [container("a", 3)]}),
}  # fmt: skip


def inventory(cluster: RealCluster) -> Inventory:
    async def read() -> Inventory:
        api = await config.new_client_from_config(config_file=str(cluster.kubeconfig))
        async with api:
            return await read_inventory(client.CoreV1Api(api))

    return asyncio.run(read())


def free_by_tkhub(cluster: RealCluster) -> int:
    return next(node.free for node in inventory(cluster).nodes if node.name == NODE)


def fits(cluster: RealCluster, ns: str, name: str, gpus: int) -> bool:
    """Whether kube-scheduler places a pod asking ``gpus`` on NODE now."""
    cluster.apply({**pod(name, limits={GPU: str(gpus)}, node=NODE, gpu=True),
                   "metadata": {"name": name, "namespace": ns}})  # fmt: skip
    placed = settle(cluster, ns, name) == NODE
    cluster.kubectl("delete", "pod", name, "-n", ns, "--wait=true", "--timeout=30s")
    return placed


def run_workload(cluster: RealCluster, ns: str, kind: str, spec: dict[str, Any]) -> None:
    meta = {"name": "workload", "namespace": ns}
    if kind == "Job":
        job_spec = {"backoffLimit": 0, "template": {"spec": on_node(spec)}}
        cluster.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                       "spec": job_spec})  # fmt: skip
        cluster.kubectl("wait", "job/workload", "-n", ns, "--for=condition=Complete",
                        "--timeout=60s")  # fmt: skip
        return
    cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": on_node(spec)})
    settle(cluster, ns, "workload")


def remove_workload(cluster: RealCluster, ns: str, kind: str) -> None:
    what = "job/workload" if kind == "Job" else "pod/workload"
    cluster.kubectl("delete", what, "-n", ns, "--cascade=foreground", "--wait=true",
                    "--timeout=60s")  # fmt: skip


def check_every_workload(cluster: RealCluster, ns: str) -> None:
    for shape, (kind, spec) in WORKLOADS.items():
        run_workload(cluster, ns, kind, spec)
        free = free_by_tkhub(cluster)
        if free > 0:
            assert fits(cluster, ns, "probe-fits", free), f"{shape}: tkhub says {free} free"
        assert not fits(cluster, ns, "probe-over", free + 1), f"{shape}: tkhub says {free} free"
        remove_workload(cluster, ns, kind)


def test_free_gpus_agree_with_the_scheduler_for_every_workload(cluster: RealCluster, ns: str):
    assert free_by_tkhub(cluster) == 2, "another test left a GPU pod on gpu-h100"
    check_every_workload(cluster, ns)


def test_a_wrong_count_in_tkhub_is_caught(cluster: RealCluster, ns: str, monkeypatch):
    """A test-only bug: tkhub forgets init containers. The check above must fail."""

    def containers_only(p: dict) -> dict[str, int]:
        counted: dict[str, int] = {}
        for c in p["spec"].get("containers") or []:
            for k, v in (c["resources"].get("limits") or {}).items():
                if k == GPU:
                    counted[k] = counted.get(k, 0) + int(v)
        return counted

    monkeypatch.setattr(tkhub.gpu.kubernetes, "pod_gpu_requests", containers_only)
    with pytest.raises(AssertionError, match="init container"):
        check_every_workload(cluster, ns)


def test_the_inventory_reads_the_nodes_as_the_operator_labels_them(cluster: RealCluster):
    nodes = {n.name: n for n in inventory(cluster).nodes}
    assert set(nodes) == {"gpu-h100", "gpu-l4", "gpu-mig", "gpu-cordoned"}  # no CPU node
    h100 = nodes["gpu-h100"].pools[0]
    assert (h100.model, h100.total, h100.memory_mib) == ("NVIDIA-H100-80GB-HBM3", 2, 81559)
    assert {p.resource for p in nodes["gpu-mig"].pools} == {
        "nvidia.com/mig-1g.5gb", "nvidia.com/mig-3g.20gb"}  # fmt: skip
    assert not nodes["gpu-cordoned"].schedulable and nodes["gpu-cordoned"].reason == "cordoned"


def events_of(cluster: RealCluster, ns: str, name: str) -> list[dict[str, Any]]:
    return cluster.items(f"/api/v1/namespaces/{ns}/events",
                         fieldSelector=f"involvedObject.name={name}")  # fmt: skip


def decided(cluster: RealCluster, ns: str, name: str) -> Callable[[], Any]:
    def check() -> Any:
        found = cluster.pod(ns, name)
        return start_failure(found, events_of(cluster, ns, name), unschedulable_for=10, grace=0)

    return check


def test_podstatus_reads_the_real_schedulers_gpu_shortage(cluster: RealCluster, ns: str):
    cluster.apply({**pod("greedy", limits={GPU: "8"}, gpu=True),
                   "metadata": {"name": "greedy", "namespace": ns}})  # fmt: skip
    failure = cluster.wait_for("a start failure", decided(cluster, ns, "greedy"))
    assert failure.reason == "FailedScheduling"
    assert "Insufficient nvidia.com/gpu" in failure.detail
    assert "GPUs it asks for" in failure.user_message
    print(f"kube-scheduler wrote: {failure.detail}")


def test_podstatus_reads_a_shortage_of_something_else_too(cluster: RealCluster, ns: str):
    """The real scheduler refuses for reasons tkhub's GPU count cannot see (CPU, a
    node selector nothing matches); the spawn must not wait for them either."""
    cluster.apply({**pod("cpu-hungry", limits={"cpu": "64"}),
                   "metadata": {"name": "cpu-hungry", "namespace": ns}})  # fmt: skip
    failure = cluster.wait_for("a start failure", decided(cluster, ns, "cpu-hungry"))
    assert failure.reason == "FailedScheduling"
    assert "Insufficient cpu" in failure.detail
    assert "No node in the cluster can run this server" in failure.user_message
    assert unschedulable_message(cluster, ns, "cpu-hungry") in failure.detail


def test_podstatus_reads_the_pull_failure_kwok_reports(cluster: RealCluster, ns: str):
    image = "missing.invalid/thinkube/gone:1"
    cluster.apply({**pod("gone", image=image), "metadata": {"name": "gone", "namespace": ns}})
    failure = cluster.wait_for("a start failure", decided(cluster, ns, "gone"))
    assert failure.reason == "ErrImagePull"
    assert image in failure.user_message and "could not be pulled" in failure.user_message
