"""Why a starting pod will not start, read from its status and events (pure).

Used by ``TkKubeSpawner`` to end a doomed spawn at once, and by ``verify`` for
its probe pods. Kubernetes words it; these functions pick the reason out and
say it in plain words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tkhub.gpu.kubernetes import is_gpu_resource

PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


@dataclass(frozen=True)
class StartFailure:
    """Why a pod will not start: the Kubernetes reason and a message for the user."""

    reason: str  # ErrImagePull, FailedScheduling, ...
    user_message: str
    detail: str  # Kubernetes' own message, for the log


def _pull_failure(pod: Mapping[str, Any]) -> StartFailure | None:
    status = pod.get("status") or {}
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for container in statuses:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        if reason not in PULL_FAILURES:
            continue
        image = container.get("image", "")
        detail = waiting.get("message", "") or reason
        if reason == "InvalidImageName":
            words = f"The image reference {image!r} is not valid"
        else:
            words = f"The image {image!r} could not be pulled"
        return StartFailure(
            reason,
            f"{words} (Kubernetes: {reason}: {detail}). Choose another environment, "
            "or ask your administrator to check the catalog entry and the registry.",
            detail,
        )
    return None


def gpu_shortage(message: str) -> bool:
    """``0/3 nodes are available: 3 Insufficient nvidia.com/gpu.`` and MIG resources."""
    return any(
        is_gpu_resource(word.rstrip(".,;"))
        for part in message.split("Insufficient ")[1:]
        for word in part.split()[:1]
    )


def _scheduling_message(pod: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> str:
    """kube-scheduler's reason for not placing the pod, from its condition or events.

    Any reason counts, not only GPUs: the real scheduler also refuses for CPU or
    memory, a node selector nothing matches, or a taint, none of which tkhub's GPU
    count sees; a spawn must not wait out its timeout for those either.
    """
    if (pod.get("spec") or {}).get("nodeName"):
        return ""  # placed since: the FailedScheduling events before it are history
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            if condition.get("reason") == "Unschedulable" and condition.get("message"):
                return str(condition["message"])
    for event in events:
        if event.get("reason") == "FailedScheduling" and event.get("message"):
            return str(event["message"])
    return ""


def start_failure(
    pod: Mapping[str, Any] | None,
    events: Iterable[Mapping[str, Any]],
    *,
    unschedulable_for: float,
    grace: float,
    what: str = "server",
) -> StartFailure | None:
    """A reason to give up on this pod now, or None while it may still start.

    Pull failures end the spawn at once. An unschedulable pod waits ``grace``
    seconds (``unschedulable_for`` counts from when it was first seen): a GPU
    being freed by a stopping server may still arrive.
    """
    if pod is None:
        return None
    pulled = _pull_failure(pod)
    if pulled is not None:
        return pulled
    message = _scheduling_message(pod, list(events))
    if not message or unschedulable_for < grace:
        return None
    if gpu_shortage(message):
        words = (
            f"No node in the cluster can give this {what} the GPUs it asks for right now "
            f"(Kubernetes: FailedScheduling: {message}). Choose another GPU placement or "
            "CPU only, or try again when a GPU is free."
        )
    else:
        words = (
            f"No node in the cluster can run this {what} right now "
            f"(Kubernetes: FailedScheduling: {message}). Choose another placement or "
            "smaller resources, or ask your administrator."
        )
    return StartFailure("FailedScheduling", words, message)


def unschedulable_seen(pod: Mapping[str, Any] | None, events: Iterable[Mapping[str, Any]]) -> bool:
    return pod is not None and bool(_scheduling_message(pod, list(events)))
