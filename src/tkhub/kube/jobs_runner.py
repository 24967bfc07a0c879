"""Jobs on a Kubernetes cluster: one ``batch/v1`` Job per run (``tkhub.kube.jobs``).

A job asking for GPUs waits in the jobs service's queue (its position shown) until
the inventory has them free; then its Job is created, and the next GPU job waits
until the scheduler has placed this one's pod (before that, its GPUs do not show
as taken; the service keeps which are placed in its table). With a Kueue queue
configured, Kueue does the waiting instead. A pod that cannot pull its image ends
the job at once. A pod the scheduler cannot place for lack of GPUs after a short
grace lost a race (a server took the GPUs after the check): its Job is deleted and
the job goes back to its place in the queue. Any other reason ends the job, in the
words a server's spawn uses. The run reports its result in the
container's termination message; a container the kernel's memory killed says so.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubespawner.slugs import safe_slug
from traitlets.config import Config

from tkhub.gpu.model import Inventory
from tkhub.jobs.models import FAILED, Job
from tkhub.jobs.paths import read_tail
from tkhub.jobs.runner import (
    Outcome,
    Requeue,
    Runner,
    Started,
    Waiting,
    outcome_from_result,
    waiting_for,
)
from tkhub.kube import kueue
from tkhub.kube.apijson import read_json
from tkhub.kube.inventory import load_client_config, read_inventory
from tkhub.kube.jobs import job_manifest, job_spawner, server_pod
from tkhub.kube.names import Names
from tkhub.kube.podstatus import gpu_shortage, start_failure, unschedulable_seen
from tkhub.selection import Selection, SelectionError, recheck_placement

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0  # a running Job's pod is read at most this often (API calls)
LIVE_INVENTORY_SECONDS = 0.25  # queued jobs of one tick share one read of nodes and pods
UNSCHEDULABLE_GRACE_SECONDS = 10.0
SLUG_LENGTH = 48  # KubeSpawner's {username} in the notebooks subPath


def all_free(inventory: Inventory) -> Inventory:
    """The cluster's GPUs as if none were taken: what a queued job may wait for."""
    nodes = tuple(
        replace(node, pools=tuple(replace(pool, allocated=0) for pool in node.pools))
        for node in inventory.nodes
    )
    return replace(inventory, nodes=nodes)


class KubeRunner(Runner):
    def __init__(
        self, names: Names, spawner_config: Config, *, notebooks_root: Path, runner_image: str,
        hub_api_url: str, queue: str = "",
    ) -> None:  # fmt: skip
        self.names = names
        self.spawner_config = spawner_config
        self.notebooks_root = notebooks_root  # the notebooks claim, mounted read-only
        self.runner_image = runner_image
        self.hub_api_url = hub_api_url
        self.queue = queue
        self._api: client.ApiClient | None = None
        self._polled: dict[int, float] = {}
        self._shortage_since: dict[int, float] = {}
        self._nodes: dict[int, str] = {}  # the node each job's pod was placed on
        self._live: tuple[float, Inventory] | None = None  # one read serves a tick
        # with a Kueue queue: jobs it still holds (their position), and when each began
        self._held: dict[int, int] = {}
        self._began: dict[int, datetime] = {}
        self._workloads: tuple[float, dict[str, int]] | None = None
        self._handed_over = 0  # the second in which the last Job went to Kueue

    async def api(self) -> client.ApiClient:
        if self._api is None:
            await load_client_config()
            self._api = client.ApiClient()
        return self._api

    async def _live_inventory(self) -> Inventory:
        now = time.monotonic()
        if self._live is None or now - self._live[0] > LIVE_INVENTORY_SECONDS:
            self._live = (now, await read_inventory(client.CoreV1Api(await self.api())))
        return self._live[1]

    async def inventory(self) -> Inventory:
        return all_free(await self._live_inventory())

    def notebooks_dir(self, user: str) -> Path:
        return self.notebooks_root / safe_slug(user, max_length=SLUG_LENGTH)

    @property
    def places_later(self) -> bool:
        return not self.queue  # with Kueue, Kueue orders and admits GPU jobs

    def placed_on(self, job: Job) -> str | None:
        return self._nodes.get(job.id)

    def unusable(self, selection: Selection) -> str | None:
        entry = selection.image
        if entry.kind != "oci" or not entry.image:
            return (f"image: {entry.title} is a local Python environment, which runs on one "
                    "machine; on the cluster choose an image environment")  # fmt: skip
        return None

    # --- start ------------------------------------------------------------------------

    async def start(self, job: Job, selection: Selection, groups: list[str]) -> Started | Waiting:
        gpu = selection.placement.uses_gpu and not self.queue  # else Kueue admits it
        if self.queue and int(time.time()) == self._handed_over:
            # Kueue orders waiting Workloads by creationTimestamp, which has whole-second
            # resolution: two Jobs handed over in one second have no defined order.
            return Waiting(f"handing over to the Kueue queue {self.queue}")
        live = await self._live_inventory()
        if gpu and not _fits(selection, live):
            return Waiting(waiting_for(selection.placement))
        spawner = job_spawner(self.spawner_config, job.user, groups, self.hub_api_url)
        pod = await server_pod(spawner, selection, all_free(live))
        manifest = job_manifest(
            pod, job, name=self.names.job(job.id), namespace=self.names.namespace,
            runner_image=self.runner_image, queue=self.queue,
        )  # fmt: skip
        batch = client.BatchV1Api(await self.api())
        try:
            await batch.create_namespaced_job(self.names.namespace, manifest)  # type: ignore[arg-type]  # a dict body is sent as is
        except ApiException as e:
            if e.status != 409:  # 409: created before a restart; it is this job's
                raise
            if await self._being_deleted(batch, job):  # the attempt before a requeue
                return Waiting("waiting for its previous Kubernetes Job to be removed")
        self._live = None  # its pod will take GPUs
        self._handed_over = int(time.time())
        limits = manifest["spec"]["template"]["spec"]["containers"][0]["resources"]
        gpus = [f"{k} x {v}" for k, v in (limits.get("limits") or {}).items() if "nvidia" in k]
        log.info("job %s: Job %s created", job.id, self.names.job(job.id))
        return Started(gpus, {"job": self.names.job(job.id)})

    async def _being_deleted(self, batch: client.BatchV1Api, job: Job) -> bool:
        found = await read_json(batch.read_namespaced_job, self.names.job(job.id),
                                 self.names.namespace)  # fmt: skip
        return found is None or bool((found.get("metadata") or {}).get("deletionTimestamp"))

    # --- follow -----------------------------------------------------------------------

    async def poll(self, job: Job) -> Outcome | Requeue | None:
        now = time.monotonic()
        if now - self._polled.get(job.id, 0.0) < POLL_SECONDS:
            return None
        self._polled[job.id] = now
        ns, name = self.names.namespace, self.names.job(job.id)
        api = await self.api()
        found = await read_json(client.BatchV1Api(api).read_namespaced_job, name, ns)
        if found is None:
            return Outcome(FAILED, "its Kubernetes Job was deleted")
        if self.queue and (found.get("spec") or {}).get("suspend"):
            self._held[job.id] = await self._kueue_position(name)
            return None  # Kueue has not admitted it: no pod yet, its time does not count
        self._held.pop(job.id, None)
        if begun := (found.get("status") or {}).get("startTime"):
            self._began[job.id] = datetime.fromisoformat(begun.replace("Z", "+00:00"))
        # this Job's pods only: a requeued job's earlier Job (same name) may leave some
        uid = (found.get("metadata") or {}).get("uid", "")
        pods = await read_json(client.CoreV1Api(api).list_namespaced_pod, ns,
                                label_selector=f"controller-uid={uid}")  # fmt: skip
        items = (pods or {}).get("items") or []
        pod = items[-1] if items else None
        if pod is not None and (pod.get("spec") or {}).get("nodeName"):
            self._nodes[job.id] = pod["spec"]["nodeName"]
        ended, refused = _ended(pod), _job_failed(found)
        # a pod killed for the deadline reports no result: the Job says why
        outcome: Outcome | Requeue | None = (
            refused if refused and (ended is None or not ended.error) else ended
        )
        if outcome is None and pod is not None:
            outcome = await self._doomed(job, pod)
        if isinstance(outcome, Requeue):
            return outcome  # the service stops this attempt and queues the job again
        if outcome is not None:
            if outcome.state == FAILED and ended is None:
                await self.stop(job)
            self._forget(job.id)
        return outcome

    async def _doomed(self, job: Job, pod: dict[str, Any]) -> Outcome | Requeue | None:
        """A pod that will not start: a pull failure, or no node for it for too long —
        for GPUs alone, a lost race (the check saw them free), so back to the queue."""
        phase = (pod.get("status") or {}).get("phase")
        if phase != "Pending":
            return None
        uid = pod["metadata"].get("uid", "")
        core = client.CoreV1Api(await self.api())
        events = await read_json(core.list_namespaced_event, self.names.namespace,
                                  field_selector=f"involvedObject.uid={uid}")  # fmt: skip
        seen = (events or {}).get("items") or []
        now = time.monotonic()
        if unschedulable_seen(pod, seen):
            self._shortage_since.setdefault(job.id, now)
        else:
            self._shortage_since.pop(job.id, None)
        since = self._shortage_since.get(job.id)
        failure = start_failure(
            pod, seen, unschedulable_for=now - since if since else 0.0,
            grace=UNSCHEDULABLE_GRACE_SECONDS, what="job",
        )  # fmt: skip
        if failure is None:
            return None
        if self.places_later and failure.reason == "FailedScheduling" and \
                gpu_shortage(failure.detail):  # fmt: skip
            log.info("job %s: lost its GPUs before its pod was placed: %s", job.id, failure.detail)
            return Requeue("another workload took its GPUs before its pod was placed")
        log.warning("job %s: %s: %s", job.id, failure.reason, failure.detail)
        return Outcome(FAILED, failure.user_message[:500], failure.detail[:4000])

    async def _kueue_position(self, job_name: str) -> int:
        now = time.monotonic()
        if self._workloads is None or now - self._workloads[0] > LIVE_INVENTORY_SECONDS:
            custom = client.CustomObjectsApi(await self.api())
            listed = await read_json(
                custom.list_namespaced_custom_object, kueue.GROUP, kueue.VERSION,
                self.names.namespace, kueue.WORKLOADS,
            )  # fmt: skip
            self._workloads = (now, kueue.queue_positions((listed or {}).get("items") or []))
        positions = self._workloads[1]
        return positions.get(job_name) or len(positions) + 1  # its Workload is not made yet

    def running_since(self, job: Job) -> datetime | None:
        if not self.queue:
            return super().running_since(job)
        return self._began.get(job.id)  # the Job's startTime: set when Kueue admits it

    def held_position(self, job: Job) -> int | None:
        return self._held.get(job.id)

    def _forget(self, job_id: int) -> None:
        self._held.pop(job_id, None)
        self._began.pop(job_id, None)
        self._polled.pop(job_id, None)
        self._shortage_since.pop(job_id, None)
        self._nodes.pop(job_id, None)

    async def stop(self, job: Job) -> None:
        batch = client.BatchV1Api(await self.api())
        try:
            await batch.delete_namespaced_job(
                self.names.job(job.id), self.names.namespace, propagation_policy="Background"
            )
        except ApiException as e:
            if e.status != 404:
                raise
        self._forget(job.id)

    def read_log(self, job: Job, limit: int) -> str:
        return read_tail(self.notebooks_dir(job.user), job.log, limit)

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()


def _fits(selection: Selection, live: Inventory) -> bool:
    """Whether the GPUs the job asks for are free now (the spawn page's own check)."""
    try:
        recheck_placement(selection, live)
    except SelectionError:
        return False
    return True


def _ended(pod: dict[str, Any] | None) -> Outcome | None:
    """The outcome of a pod whose notebook container has ended, from what it wrote to
    its termination message, or from why Kubernetes ended it."""
    if pod is None or (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
        return None
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    terminated = ((statuses[0] if statuses else {}).get("state") or {}).get("terminated") or {}
    if terminated.get("reason") == "OOMKilled":
        return Outcome(FAILED, "the job ran out of memory (its container was OOM-killed)")
    try:
        result = json.loads(terminated.get("message") or "null")
    except ValueError:
        result = None
    if result is None and (pod.get("status") or {}).get("reason"):
        return Outcome(FAILED, f"its pod failed ({pod['status']['reason']})")
    return outcome_from_result(result)


def _job_failed(found: dict[str, Any]) -> Outcome | None:
    """A Job Kubernetes failed before or without its pod: the deadline, mostly."""
    for condition in (found.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            reason = condition.get("reason", "")
            if reason == "DeadlineExceeded":
                return Outcome(FAILED, "time limit reached (Kubernetes: DeadlineExceeded)")
            return Outcome(FAILED, f"Kubernetes failed the Job ({reason or 'no reason'})",
                           str(condition.get("message", ""))[:4000])  # fmt: skip
    return None
