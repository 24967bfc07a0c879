"""tkhub's GPU accounting against the emulator's scheduler, which counts on its own.

The spawn page says what is free from ``inventory_from_objects``; the emulator's
scheduler decides what fits with its own few lines (``gpus_requested``). For
each shape of workload both must agree, and a wrong count in tkhub must show.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kube_cluster import container
from kube_support import Kube

import tkhub.gpu.kubernetes
from tkhub.gpu.kubernetes import inventory_from_objects

NODE = "gpu-1"  # two GPUs (kube conftest)
GPU = "nvidia.com/gpu"

WORKLOADS = {
    "one container, one GPU": ({"containers": [container("a", {GPU: "1"})]}, "Running"),
    "two containers, one each": (
        {"containers": [container("a", {GPU: "1"}), container("b", {GPU: "1"})]},
        "Running",
    ),
    "an init container needing more than the containers": (
        {
            "initContainers": [container("prepare", {GPU: "2"})],
            "containers": [container("a", {GPU: "1"})],
        },
        "Running",
    ),
    "a CPU container beside a GPU one": (
        {"containers": [container("a", {"cpu": "1"}), container("b", {GPU: "1"})]},
        "Pending",
    ),
    "a finished pod holds nothing": ({"containers": [container("a", {GPU: "2"})]}, "Succeeded"),
}


def free_by_tkhub(kube: Kube) -> int:
    store = kube.emulator.store
    inventory = inventory_from_objects(store.list("nodes"), store.list("pods"))
    return next(node.free for node in inventory.nodes if node.name == NODE)


def free_by_scheduler(kube: Kube) -> int:
    node = next(n for n in kube.emulator.store.list("nodes") if n["metadata"]["name"] == NODE)
    return kube.cluster.free_gpus(node).get(GPU, 0)


@pytest.fixture
def workload(kube: Kube) -> Iterator[str]:
    name = "accounting-check"
    yield name
    kube.emulator.call(kube.emulator.store.remove("pods", "default", name))


def assert_agrees(kube: Kube, workload: str) -> None:
    for shape, (spec, phase) in WORKLOADS.items():
        kube.emulator.call(kube.cluster.workload(NODE, workload, spec, phase))
        assert free_by_tkhub(kube) == free_by_scheduler(kube), shape
        kube.emulator.call(kube.emulator.store.remove("pods", "default", workload))


def test_free_gpus_agree_with_the_scheduler_for_every_workload(kube: Kube, workload: str):
    assert free_by_scheduler(kube) == 2, "another test left a GPU pod on gpu-1"
    assert_agrees(kube, workload)


def test_a_wrong_count_in_tkhub_is_caught(kube: Kube, workload: str, monkeypatch):
    """A test-only bug: tkhub forgets init containers. The check above must fail."""

    def containers_only(pod: dict) -> dict[str, int]:
        counted: dict[str, int] = {}
        for c in pod["spec"].get("containers") or []:
            for k, v in c["resources"].get("limits", {}).items():
                if k == GPU:
                    counted[k] = counted.get(k, 0) + int(v)
        return counted

    monkeypatch.setattr(tkhub.gpu.kubernetes, "pod_gpu_requests", containers_only)
    with pytest.raises(AssertionError, match="init container"):
        assert_agrees(kube, workload)
