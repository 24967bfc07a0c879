"""The local machine's GPUs as an ``Inventory``, with holders from the ledger."""

from __future__ import annotations

import logging
import socket
from collections import defaultdict
from dataclasses import replace

from tkhub.gpu import nvml
from tkhub.gpu.model import GpuDevice, GpuNode, GpuPool, Inventory
from tkhub.local.ledger import GpuLedger

log = logging.getLogger(__name__)


def local_inventory(ledger: GpuLedger | None = None) -> Inventory:
    """This machine's GPUs (zero, with a note, where there is no driver)."""
    try:
        found = nvml.read_devices()
    except nvml.NvmlUnavailable as exc:
        log.info("No local GPU inventory: %s", exc)
        return Inventory(mode="local", nodes=(local_node(()),), note=str(exc))
    holders = ledger.holders() if ledger else {}
    devices = [
        GpuDevice(
            index=d.index,
            uuid=d.uuid,
            model=d.name,
            memory_total_mib=d.memory_total_mib,
            memory_used_mib=d.memory_used_mib,
            utilization_pct=d.utilization_pct,
            holders=holders.get(d.uuid, ()),
        )
        for d in found
    ]
    limit = ledger.max_servers_per_gpu if ledger else 1
    note = "" if devices else "no GPU on this machine"
    node = replace(local_node(devices, limit), cuda_driver=found[0].cuda_driver if found else None)
    return Inventory(mode="local", nodes=(node,), note=note)


def local_node(devices: tuple[GpuDevice, ...] | list[GpuDevice], limit: int = 1) -> GpuNode:
    """One node for this machine: a pool per model; a unit is in use at ``limit`` holders."""
    by_model: dict[str, list[GpuDevice]] = defaultdict(list)
    for device in devices:
        by_model[device.model].append(device)
    pools = tuple(
        GpuPool(
            model=model,
            memory_mib=max(d.memory_total_mib for d in group),
            total=len(group),
            allocated=sum(1 for d in group if len(d.holders) >= limit),
            devices=tuple(group),
            shared_replicas=limit,
        )
        for model, group in by_model.items()
    )
    return GpuNode(name=socket.gethostname(), pools=pools)
