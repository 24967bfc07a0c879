"""A placement as KubeSpawner trait values (resources, node selector, tolerations)."""

from __future__ import annotations

from typing import Any

from tkhub.gpu.kubernetes import PRODUCT_LABEL
from tkhub.gpu.model import GPU_RESOURCE, Inventory, Placement
from tkhub.selection import SelectionError

HOSTNAME_LABEL = "kubernetes.io/hostname"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


def _resource_for(placement: Placement, inventory: Inventory) -> tuple[str, str | None]:
    """The extended resource to request, and the GFD product to select, if any."""
    if placement.kind == "model":
        for node in inventory.nodes:
            for pool in node.pools:
                if pool.model == placement.value:
                    # a MIG pool's model is "<product> MIG <profile>"
                    return pool.resource, pool.model.split(" MIG ")[0]
        raise SelectionError("gpu", f"there is no GPU model {placement.value!r} in the cluster")
    if placement.kind == "node":
        chosen = next((n for n in inventory.nodes if n.name == placement.value), None)
        if chosen is None:
            raise SelectionError("gpu", f"there is no GPU node {placement.value!r}")
        free_pools = sorted(chosen.pools, key=lambda p: (p.resource != GPU_RESOURCE, -p.free))
        return (free_pools[0].resource if free_pools else GPU_RESOURCE), None
    return GPU_RESOURCE, None


def kubespawner_overrides(placement: Placement, inventory: Inventory) -> dict[str, Any]:
    """KubeSpawner trait values for ``placement``; CPU gets no GPU and sees none."""
    if not placement.uses_gpu:
        return {"environment": {"NVIDIA_VISIBLE_DEVICES": "void"}}
    resource, product = _resource_for(placement, inventory)
    count = str(max(placement.count, 1))
    selector: dict[str, str] = {}
    if placement.kind == "node":
        selector[HOSTNAME_LABEL] = placement.value
    if product:
        selector[PRODUCT_LABEL] = product.replace(" ", "-")
    return {
        "extra_resource_limits": {resource: count},
        "extra_resource_guarantees": {resource: count},
        "node_selector": selector,
        "tolerations": [dict(GPU_TOLERATION)],
        "environment": {"NVIDIA_DRIVER_CAPABILITIES": "compute,utility"},
    }
