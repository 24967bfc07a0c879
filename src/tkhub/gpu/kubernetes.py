"""The cluster's GPUs from Node and Pod objects, exactly as the API returns them.

Pure functions over JSON (dicts), so they are tested with recorded-style fixtures
and the same code serves the hub and, in the cluster, the catalog's
``GET /api/v1/nodes/gpu`` (``tkhub.kube.inventory`` lists the objects).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from tkhub.gpu.model import GPU_RESOURCE, GpuNode, GpuPool, Inventory
from tkhub.quantity import QuantityError, parse_quantity

MIG_PREFIX = "nvidia.com/mig-"
PRODUCT_LABEL = "nvidia.com/gpu.product"
MEMORY_LABEL = "nvidia.com/gpu.memory"
REPLICAS_LABEL = "nvidia.com/gpu.replicas"
PRESENT_LABEL = "nvidia.com/gpu.present"
# GPU Feature Discovery: the newest CUDA the node's driver runs (newer GFD releases
# spell it runtime-version, older ones runtime)
CUDA_LABELS = ("nvidia.com/cuda.runtime-version", "nvidia.com/cuda.runtime")
TERMINATED_PHASES = {"Succeeded", "Failed"}
Json = Mapping[str, Any]


def is_gpu_resource(name: str) -> bool:
    return name == GPU_RESOURCE or name.startswith(MIG_PREFIX)


def _count(value: Any) -> int:
    try:
        return int(parse_quantity(str(value)))
    except (QuantityError, ValueError, TypeError):
        return 0


def _container_gpus(container: Json) -> dict[str, int]:
    """GPU requests of one container; limits stand in where requests are absent."""
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = {**limits, **(resources.get("requests") or {})}
    return {k: _count(v) for k, v in requests.items() if is_gpu_resource(k)}


def pod_gpu_requests(pod: Json) -> dict[str, int]:
    """Effective GPU request: max(sum of containers, largest init container)."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = defaultdict(int)
    for container in spec.get("containers") or []:
        for name, n in _container_gpus(container).items():
            total[name] += n
    sidecars: dict[str, int] = defaultdict(int)  # restartable init containers run alongside
    init_peak: dict[str, int] = defaultdict(int)
    for container in spec.get("initContainers") or []:
        gpus = _container_gpus(container)
        for name, n in gpus.items():
            if container.get("restartPolicy") == "Always":
                sidecars[name] += n
            init_peak[name] = max(init_peak[name], sidecars[name] + n)
    for name, n in sidecars.items():
        total[name] += n
    return {k: max(total.get(k, 0), init_peak.get(k, 0)) for k in {*total, *init_peak}}


def _unschedulable_reason(node: Json) -> str:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return "cordoned"
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        return "not ready"
    for taint in spec.get("taints") or []:
        if taint.get("key") == GPU_RESOURCE:
            continue  # our servers tolerate the GPU taint
        if taint.get("effect") in ("NoSchedule", "NoExecute"):
            value = f"={taint['value']}" if taint.get("value") else ""
            return f"tainted {taint.get('key')}{value}:{taint.get('effect')}"
    return ""


def _int_label(labels: Json, key: str) -> int | None:
    try:
        return int(labels[key])
    except (KeyError, TypeError, ValueError):
        return None


def _pools(node: Json, used: Mapping[str, int]) -> tuple[GpuPool, ...]:
    labels = (node.get("metadata") or {}).get("labels") or {}
    status = node.get("status") or {}
    allocatable = status.get("allocatable") or status.get("capacity") or {}
    product = labels.get(PRODUCT_LABEL) or "NVIDIA GPU"
    replicas = _int_label(labels, REPLICAS_LABEL) or 1
    pools = []
    for resource in sorted(k for k in allocatable if is_gpu_resource(k)):
        total = _count(allocatable[resource])
        if total <= 0:
            continue
        if resource == GPU_RESOURCE:
            model, memory = product, _int_label(labels, MEMORY_LABEL)
        else:  # a MIG profile: its own resource, "<product> MIG 1g.10gb"
            model, memory = f"{product} MIG {resource.removeprefix(MIG_PREFIX)}", None
        pools.append(
            GpuPool(
                model=model,
                resource=resource,
                memory_mib=memory,
                total=total,
                allocated=min(used.get(resource, 0), total),
                shared_replicas=replicas if resource == GPU_RESOURCE else 1,
            )
        )
    return tuple(pools)


def _usage_by_node(pods: Iterable[Json]) -> dict[str, dict[str, int]]:
    usage: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or (pod.get("status") or {}).get("phase") in TERMINATED_PHASES:
            continue
        for resource, n in pod_gpu_requests(pod).items():
            usage[node_name][resource] += n
    return usage


def _cuda_driver(labels: Json) -> str | None:
    for prefix in CUDA_LABELS:
        major, minor = _int_label(labels, prefix + ".major"), _int_label(labels, prefix + ".minor")
        if major is not None:
            return f"{major}.{minor or 0}"
    return None


def inventory_from_objects(nodes: list[dict], pods: list[dict]) -> Inventory:
    """GPU nodes (those with GPU resources or labelled GPU-present) and what is free."""
    usage = _usage_by_node(pods)
    result = []
    for node in nodes:
        name = (node.get("metadata") or {}).get("name", "")
        labels = (node.get("metadata") or {}).get("labels") or {}
        pools = _pools(node, usage.get(name, {}))
        if not pools and labels.get(PRESENT_LABEL) != "true":
            continue
        reason = _unschedulable_reason(node)
        if not reason and not pools:
            reason = "GPU present but no GPU resource advertised (device plugin not running)"
        result.append(
            GpuNode(
                name=name, pools=pools, schedulable=not reason, reason=reason,
                cuda_driver=_cuda_driver(labels),
            )
        )  # fmt: skip
    result.sort(key=lambda n: n.name)
    note = "" if result else "no GPU nodes in the cluster"
    return Inventory(mode="kubernetes", nodes=tuple(result), note=note)
