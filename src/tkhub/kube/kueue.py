"""What Kueue says about tkhub's Jobs, read from its Workload objects (pure).

With ``jobs.kueue_queue`` set, tkhub hands GPU jobs to a Kueue LocalQueue: Kueue's
webhook creates each Job suspended and its Workload waits until the ClusterQueue
has quota, then Kueue unsuspends the Job. A waiting job's position is its place
among the Workloads still waiting in the same LocalQueue, in Kueue's own order:
higher priority first, then the older one. ``creationTimestamp`` has whole
seconds, so tkhub hands Kueue at most one Job a second: its order is then defined.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

GROUP, VERSION, WORKLOADS = "kueue.x-k8s.io", "v1beta2", "workloads"
HOLDING = ("QuotaReserved", "Admitted", "Finished")


def _true(workload: dict[str, Any], kind: str) -> bool:
    conditions = (workload.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def waiting(workload: dict[str, Any]) -> bool:
    """Not yet given quota (nor finished): the Job stays suspended."""
    return not any(_true(workload, kind) for kind in HOLDING)


def _job_name(workload: dict[str, Any]) -> str | None:
    for owner in (workload.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("kind") == "Job":
            return str(owner.get("name"))
    return None


def queue_positions(workloads: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Job name -> position (1 = admitted next) among the waiting Workloads of its queue."""
    queues: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for workload in workloads:
        if waiting(workload) and _job_name(workload):
            queues[(workload.get("spec") or {}).get("queueName", "")].append(workload)
    positions: dict[str, int] = {}
    for members in queues.values():
        members.sort(key=lambda w: (-int((w.get("spec") or {}).get("priority") or 0),
                                    w["metadata"].get("creationTimestamp", "")))  # fmt: skip
        for index, workload in enumerate(members, 1):
            positions[str(_job_name(workload))] = index
    return positions
