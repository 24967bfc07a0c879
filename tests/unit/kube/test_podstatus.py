"""Reading why a pod will not start, from status and events as the API returns them."""

from __future__ import annotations

import pytest

from tkhub.kube.podstatus import start_failure, unschedulable_seen

IMAGE = "registry.example.org/thinkube/nope:1.0"


def pod(waiting: str | None = None, message: str = "", scheduled: dict | None = None) -> dict:
    status: dict = {"phase": "Pending", "conditions": []}
    if scheduled is not None:
        status["conditions"].append({"type": "PodScheduled", **scheduled})
    if waiting:
        status["containerStatuses"] = [
            {
                "name": "notebook",
                "image": IMAGE,
                "ready": False,
                "state": {"waiting": {"reason": waiting, "message": message}},
            }
        ]
    return {"metadata": {"name": "jupyter-alice", "uid": "u1"}, "status": status}


UNSCHEDULABLE = {
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, "
    "2 node(s) had untolerated taint.",
}


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"])
def test_pull_failures_end_at_once_with_the_reason(reason):
    failure = start_failure(pod(reason, "not found"), [], unschedulable_for=0, grace=5)
    assert failure is not None and failure.reason == reason
    assert reason in failure.user_message and IMAGE in failure.user_message
    assert "not found" in failure.detail


def test_a_starting_pod_is_not_a_failure():
    assert start_failure(pod("ContainerCreating"), [], unschedulable_for=99, grace=5) is None
    assert start_failure(None, [], unschedulable_for=99, grace=5) is None


def test_gpu_shortage_waits_for_the_grace():
    p = pod(scheduled=UNSCHEDULABLE)
    assert unschedulable_seen(p, [])
    assert start_failure(p, [], unschedulable_for=1.0, grace=5) is None
    failure = start_failure(p, [], unschedulable_for=5.0, grace=5)
    assert failure is not None and failure.reason == "FailedScheduling"
    assert "Insufficient nvidia.com/gpu" in failure.user_message
    assert "GPU" in failure.user_message


def test_gpu_shortage_from_an_event_alone():
    message = "0/2 nodes are available: 2 Insufficient nvidia.com/mig-1g.10gb."
    event = {"reason": "FailedScheduling", "type": "Warning", "message": message}
    failure = start_failure(pod(), [event], unschedulable_for=10, grace=5)
    assert failure is not None and "mig-1g.10gb" in failure.user_message


def test_other_scheduling_trouble_fails_fast_too_in_plain_words():
    """kube-scheduler 1.34's own words for a CPU shortage (read from a real cluster)."""
    message = (
        "0/6 nodes are available: 1 node(s) were unschedulable, 5 Insufficient cpu. "
        "preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling."
    )
    cpu = {**UNSCHEDULABLE, "message": message}
    assert unschedulable_seen(pod(scheduled=cpu), [])
    assert start_failure(pod(scheduled=cpu), [], unschedulable_for=1, grace=5) is None
    failure = start_failure(pod(scheduled=cpu), [], unschedulable_for=5, grace=5)
    assert failure is not None and failure.reason == "FailedScheduling"
    assert "can run this server" in failure.user_message and "GPU" not in failure.user_message
    assert failure.detail == message


def test_a_pod_placed_after_failed_attempts_is_not_unschedulable():
    """kube-scheduler's FailedScheduling events stay after it places the pod (a GPU
    freed, a node joined): a pod bound to a node, still Pending while its node starts
    it, must not be failed for them."""
    message = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    event = {"reason": "FailedScheduling", "type": "Warning", "message": message}
    placed = pod()
    placed["spec"] = {**placed.get("spec", {}), "nodeName": "gpu-l4"}
    assert not unschedulable_seen(placed, [event])
    assert start_failure(placed, [event], unschedulable_for=99, grace=5) is None
