"""Fixtures for the unit tests that read GPU inventories (gpu, local, kube, cli).

- ``cluster``: (nodes, pods) JSON as the Kubernetes API returns them: an H100 node,
  an A100 node in MIG mode, a time-sliced T4 node, a cordoned L4 node, a NotReady
  node, a node with a foreign NoSchedule taint, and a CPU-only node.
- ``make_pod``: builds one Pod object (name, node, requests, limits, init containers).
- ``fake_nvml``: replaces ``tkhub.gpu.nvml.read_devices`` (the hardware boundary)
  with a list the test sets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tkhub.gpu import nvml


def node(
    name: str,
    *,
    gpus: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    ready: bool = True,
    cordoned: bool = False,
    taints: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    resources = {"cpu": "64", "memory": "515890Mi", "pods": "110", **(gpus or {})}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {
            **({"unschedulable": True} if cordoned else {}),
            **({"taints": taints} if taints else {}),
        },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True" if ready else "Unknown"},
            ],
        },
    }


def pod(
    name: str,
    node_name: str | None,
    *,
    requests: dict[str, str] | None = None,
    limits: dict[str, str] | None = None,
    init: list[dict[str, Any]] | None = None,
    phase: str = "Running",
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "jhub"},
        "spec": {
            **({"nodeName": node_name} if node_name else {}),
            "containers": [{"name": "notebook", "image": "x", "resources": resources}],
            **({"initContainers": init} if init else {}),
        },
        "status": {"phase": phase},
    }


def gfd(product: str, memory: int, count: int, replicas: int | None = None) -> dict[str, str]:
    labels = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.memory": str(memory),
        "nvidia.com/gpu.count": str(count),
    }
    if replicas:
        labels["nvidia.com/gpu.replicas"] = str(replicas)
    return labels


H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-40GB"


@pytest.fixture
def cluster() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    gpu_taint = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    nodes = [
        node("node-a", gpus={"nvidia.com/gpu": "4"}, labels=gfd(H100, 81559, 4), taints=gpu_taint),
        node("node-b", gpus={"nvidia.com/gpu": "2"}, labels=gfd(H100, 81559, 2)),
        node(
            "node-mig",
            gpus={"nvidia.com/mig-1g.5gb": "7", "nvidia.com/mig-3g.20gb": "2"},
            labels=gfd(A100, 40960, 1),
        ),
        node("node-t4", gpus={"nvidia.com/gpu": "8"}, labels=gfd("Tesla-T4", 15360, 2, 4)),
        node(
            "node-l4",
            gpus={"nvidia.com/gpu": "1"},
            labels=gfd("NVIDIA-L4", 23034, 1),
            cordoned=True,
        ),
        node(
            "node-down",
            gpus={"nvidia.com/gpu": "1"},
            labels=gfd("NVIDIA-L4", 23034, 1),
            ready=False,
        ),
        node(
            "node-gpu-maint",
            gpus={"nvidia.com/gpu": "2"},
            labels=gfd(H100, 81559, 2),
            taints=[{"key": "maintenance", "value": "true", "effect": "NoSchedule"}],
        ),
        node("cpu-1"),
    ]
    pods = [
        pod(
            "jupyter-alice",
            "node-a",
            requests={"nvidia.com/gpu": "1"},
            limits={"nvidia.com/gpu": "1"},
        ),
        pod("train", "node-a", limits={"nvidia.com/gpu": "2"}),  # limits stand in for requests
        pod("done", "node-a", limits={"nvidia.com/gpu": "1"}, phase="Succeeded"),
        pod("jupyter-bob", "node-b", limits={"nvidia.com/gpu": "1"}),
        pod("jupyter-carol", "node-b", requests={"nvidia.com/gpu": "1"}),
        pod("pending", None, requests={"nvidia.com/gpu": "1"}, phase="Pending"),
        pod("mig-user", "node-mig", limits={"nvidia.com/mig-1g.5gb": "3"}),
        pod("t4-share", "node-t4", limits={"nvidia.com/gpu": "1"}),
        pod("web", "cpu-1", requests={"cpu": "1"}),
    ]
    return nodes, pods


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def install(devices: list[nvml.NvmlDevice] | Exception) -> None:
        def read_devices() -> list[nvml.NvmlDevice]:
            if isinstance(devices, Exception):
                raise devices
            return list(devices)

        monkeypatch.setattr(nvml, "read_devices", read_devices)

    return install


@pytest.fixture
def make_pod() -> Callable[..., dict[str, Any]]:
    return pod
