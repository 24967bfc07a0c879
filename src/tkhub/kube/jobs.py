"""A job's ``batch/v1`` Job, from the very pod a server of the same selection gets.

``job_spawner`` makes a ``TkKubeSpawner`` for the job's user (configured as the hub
configures its own, by ``tkhub.kube.hub_config.configure``), ``server_pod`` has it
apply the selection and build its pod manifest, and ``job_manifest`` turns that pod
into a Job: same image (by digest where the catalog gives one), volumes, GPU
resources, node selector and tolerations; the notebook container runs the job
runner (staged by the same init container that gives servers the ``tkhub`` client)
instead of JupyterLab, and carries no hub credentials.
"""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace
from typing import Any

from kubernetes_asyncio.client import ApiClient
from traitlets.config import Config

from tkhub.gpu.model import Inventory
from tkhub.jobs.models import Job
from tkhub.jobs.stage import RUNNER
from tkhub.kube.names import (
    JOB_COMPONENT,
    JOB_ID_LABEL,
    NOTEBOOKS_VOLUME,
    TOOLS_MOUNT,
    TOOLS_VOLUME,
    tools_init_container,
    tools_volume,
)
from tkhub.kube.spawner import TkKubeSpawner
from tkhub.selection import Selection

KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
TERMINATION_LOG = "/dev/termination-log"
# A server's variables that make no sense in a job: no server, no hub token.
DROPPED_VARIABLES = ("JUPYTERHUB_", "JPY_")
FINISHED_TTL_SECONDS = 7 * 86400  # finished Jobs (and their pods) are kept a week


def job_spawner(config: Config, user: str, groups: list[str], hub_api_url: str) -> TkKubeSpawner:
    """The spawner the hub would use for ``user``; used only to build a pod."""
    person = SimpleNamespace(
        name=user, id=0, url=f"/user/{user}/", admin=False,
        groups=[SimpleNamespace(name=group) for group in groups],
    )  # fmt: skip
    hub = SimpleNamespace(
        api_url=hub_api_url, public_host="", base_url="/hub/",
        url=hub_api_url.removesuffix("api").removesuffix("/") + "/",
    )  # fmt: skip
    return TkKubeSpawner(user=person, hub=hub, config=config)


async def server_pod(
    spawner: TkKubeSpawner, selection: Selection, inventory: Inventory
) -> dict[str, Any]:
    """The pod manifest a server of this selection gets, as plain JSON."""
    await spawner.apply_selection(selection, inventory)
    pod = await spawner.get_pod_manifest()
    async with ApiClient() as api:
        return dict(api.sanitize_for_serialization(pod))


def run_spec(job: Job) -> dict[str, Any]:
    """What ``tkhub.jobs.execute`` runs, with the paths as the pod sees them."""
    notebooks = NOTEBOOKS_VOLUME.mount_path
    source = f"{notebooks}/{job.notebook}"
    return {
        "job": job.id, "python": "python", "parameters": job.parameters,
        "input": source, "output": f"{notebooks}/{job.output}",
        "log": f"{notebooks}/{job.log}", "cwd": source.rsplit("/", 1)[0],
        "result": TERMINATION_LOG, "termination_message": True,
    }  # fmt: skip


def _job_container(container: dict[str, Any], job: Job) -> dict[str, Any]:
    container = copy.deepcopy(container)
    for field in ("args", "ports", "lifecycle", "readinessProbe", "livenessProbe"):
        container.pop(field, None)
    container["command"] = ["python", f"{TOOLS_MOUNT}/{RUNNER}"]
    env = [e for e in container.get("env") or [] if not e["name"].startswith(DROPPED_VARIABLES)]
    env += [
        {"name": "TKHUB_JOB_ID", "value": str(job.id)},
        {"name": "TKHUB_JOB_SPEC", "value": json.dumps(run_spec(job))},
    ]
    container["env"] = env
    container["terminationMessagePath"] = TERMINATION_LOG
    container["terminationMessagePolicy"] = "File"
    mounts = list(container.get("volumeMounts") or [])
    container["volumeMounts"] = [
        *mounts, {"name": TOOLS_VOLUME, "mountPath": TOOLS_MOUNT, "readOnly": True}
    ]  # fmt: skip
    return container


def job_manifest(
    pod: dict[str, Any], job: Job, *, name: str, namespace: str, runner_image: str,
    queue: str = "",
) -> dict[str, Any]:  # fmt: skip
    """The Job running ``job`` in ``pod`` (a server's pod manifest for its selection)."""
    spec = copy.deepcopy(pod["spec"])
    spec["restartPolicy"] = "Never"
    spec["containers"] = [_job_container(spec["containers"][0], job)]
    spec["initContainers"] = [tools_init_container(runner_image)]  # no examples delivery
    volumes = list(spec.get("volumes") or [])
    if not any(v["name"] == TOOLS_VOLUME for v in volumes):  # a server without the client
        volumes.append(tools_volume())
    spec["volumes"] = volumes
    meta = pod.get("metadata") or {}
    labels = {**(meta.get("labels") or {}), "component": JOB_COMPONENT,
              JOB_ID_LABEL: str(job.id)}  # fmt: skip
    job_labels = dict(labels)
    if queue:  # Kueue admits the Job from this LocalQueue (it suspends it until then)
        job_labels[KUEUE_QUEUE_LABEL] = queue
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": job_labels},
        "spec": {
            "backoffLimit": 0,  # a failed notebook is reported, never run twice
            "activeDeadlineSeconds": job.time_limit,
            "ttlSecondsAfterFinished": FINISHED_TTL_SECONDS,
            "template": {
                "metadata": {"labels": labels, "annotations": meta.get("annotations") or {}},
                "spec": spec,
            },
        },
    }
