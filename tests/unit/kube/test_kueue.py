"""Queue positions from Kueue Workloads (shapes as Kueue 0.17 writes them)."""

from __future__ import annotations

from typing import Any

from tkhub.kube.kueue import queue_positions, waiting


def workload(job: str, created: str, *, queue: str = "gpu-jobs", priority: int | None = None,
             conditions: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {"queueName": queue}
    if priority is not None:
        spec["priority"] = priority
    return {
        "metadata": {"name": f"job-{job}-1a2b3", "creationTimestamp": created,
                     "ownerReferences": [{"kind": "Job", "name": job}]},
        "spec": spec,
        "status": {"conditions": [{"type": c, "status": "True"} for c in conditions]},
    }  # fmt: skip


def test_positions_follow_age_within_a_queue_and_skip_admitted_ones():
    found = queue_positions([
        workload("tkhub-job-3", "2026-12-06T03:51:03Z"),
        workload("tkhub-job-1", "2026-12-06T03:51:01Z", conditions=("QuotaReserved", "Admitted")),
        workload("tkhub-job-2", "2026-12-06T03:51:02Z"),
        workload("other", "2026-12-06T03:50:00Z", queue="cpu-jobs"),
    ])  # fmt: skip
    assert found == {"tkhub-job-2": 1, "tkhub-job-3": 2, "other": 1}


def test_higher_priority_goes_first_and_finished_workloads_do_not_wait():
    found = queue_positions([
        workload("old", "2026-12-06T03:51:01Z"),
        workload("urgent", "2026-12-06T03:51:09Z", priority=100),
        workload("done", "2026-12-06T03:50:00Z", conditions=("Finished",)),
    ])  # fmt: skip
    assert found == {"urgent": 1, "old": 2}
    assert not waiting(workload("x", "t", conditions=("QuotaReserved",)))
