"""A job's batch/v1 Job: the very pod a server of the same selection gets (golden test
against the hub's own spawner), as a Job that validates against the Kubernetes schemas,
and a pod's end read back as the job's outcome."""

from __future__ import annotations

import json
import types

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient
from traitlets.config import Config

from tkhub.catalog.schemas import ImagePublic
from tkhub.gpu.model import Placement
from tkhub.jobs.models import Job
from tkhub.kube.hub_config import configure
from tkhub.kube.jobs import (
    DROPPED_VARIABLES as DROPPED,
)
from tkhub.kube.jobs import (
    KUEUE_QUEUE_LABEL,
    job_manifest,
    job_spawner,
    server_pod,
)
from tkhub.kube.jobs_runner import _ended, _job_failed, all_free
from tkhub.kube.jobs_service import spawner_config
from tkhub.kube.names import HOME, JOB_COMPONENT
from tkhub.kube.spawner import TkKubeSpawner
from tkhub.selection import Selection

IMAGE = "registry.example.org/thinkube/tk-jupyter-ml@sha256:" + "a" * 64
HUB_IMAGE = "registry.example.org/thinkube/tkhub-hub:1.0"
ENV = {"TKHUB_NAMESPACE": "tkhub", "TKHUB_EXAMPLES_IMAGE": HUB_IMAGE,
       "TKHUB_PLATFORM_SERVICES": json.dumps([
    {"name": "MLflow", "url": "http://mlflow:5000", "env": {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}},
])}  # fmt: skip


def entry() -> ImagePublic:
    return ImagePublic(name="ml", display_name="ML", image=IMAGE, gpu="optional",
                       resources={"cpu_limit": "4", "mem_limit": "16Gi"})  # fmt: skip


def a_job(**fields: object) -> Job:
    values: dict = {
        "id": 42, "user": "alice", "notebook": "train/fine-tune.ipynb",
        "output": "train/fine-tune.run-42.ipynb", "log": "train/fine-tune.run-42.log",
        "parameters": {"lr": 0.0001}, "time_limit": 3600,
    }  # fmt: skip
    return Job(**{**values, **fields})


async def hub_server_pod(selection: Selection, inventory) -> dict:
    """The pod the hub's spawner (configured as the chart's hub is) builds for alice."""
    config = Config()
    configure(config, environ={"TKHUB_NAMESPACE": "tkhub", "TKHUB_CATALOG_TOKEN": "t",
                               "TKHUB_EXAMPLES_IMAGE": HUB_IMAGE})  # fmt: skip
    config.KubeSpawner.uid, config.KubeSpawner.fs_gid = 1000, 100  # the chart's singleuser
    config.TkKubeSpawner.platform_services = json.loads(ENV["TKHUB_PLATFORM_SERVICES"])
    user = types.SimpleNamespace(name="alice", id=7, url="/user/alice/", admin=False, groups=[])
    hub = types.SimpleNamespace(api_url="http://hub:8081/hub/api", public_host="",
                                base_url="/hub/", url="http://hub:8081/hub/")  # fmt: skip
    spawner = TkKubeSpawner(user=user, hub=hub, config=config)
    await spawner.apply_selection(selection, inventory)
    async with ApiClient() as api:
        return dict(api.sanitize_for_serialization(await spawner.get_pod_manifest()))


async def job_for(selection: Selection, inventory, queue: str = "") -> dict:
    spawner = job_spawner(spawner_config(ENV), "alice", [], "http://hub:8081/hub/api")
    pod = await server_pod(spawner, selection, inventory)
    return job_manifest(pod, a_job(), name="tkhub-job-42", namespace="tkhub",
                        runner_image=HUB_IMAGE, queue=queue)  # fmt: skip


@pytest.mark.parametrize(
    "placement",
    [
        Placement("cpu"),
        Placement("auto", count=2),
        Placement("model", "NVIDIA-H100-80GB-HBM3"),
        Placement("node", "gpu-a"),
    ],  # fmt: skip
    ids=["cpu", "any-gpu", "model", "node"],
)
async def test_the_job_pod_is_the_server_pod(kubeconfig, inventory, placement):
    selection = Selection(entry(), placement)
    server = await hub_server_pod(selection, inventory)
    job = await job_for(selection, inventory)
    pod = job["spec"]["template"]["spec"]
    main, theirs = pod["containers"][0], server["spec"]["containers"][0]
    for field in ("image", "resources", "securityContext", "workingDir"):
        assert main.get(field) == theirs.get(field), field
    assert main["image"] == IMAGE  # by digest, as the catalog gives it
    for field in ("nodeSelector", "tolerations", "securityContext", "affinity"):
        assert pod.get(field) == server["spec"].get(field), field
    assert pod["volumes"] == server["spec"]["volumes"]
    assert main["volumeMounts"][:-1] == theirs["volumeMounts"]  # + the runner's, read-only
    assert {
        "name": "tkhub-tools",
        "mountPath": "/usr/local/bin/tkhub",
        "subPath": "tkhub",
        "readOnly": True,
    } in theirs["volumeMounts"]  # `tkhub jobs` in its terminals
    assert pod["initContainers"] == [
        c for c in server["spec"]["initContainers"] if c["name"] == "tkhub-tools"
    ]  # the same staging, no examples delivery
    server_env = {e["name"]: e for e in theirs["env"] if not e["name"].startswith(DROPPED)}
    job_env = {e["name"]: e for e in main["env"]}
    assert {k: v for k, v in job_env.items() if not k.startswith("TKHUB_JOB_")} == server_env
    assert server_env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"


async def test_the_job_runs_the_notebook_once_within_its_time(kubeconfig, inventory):
    job = await job_for(Selection(entry(), Placement("auto", count=1)), inventory, "gpu-jobs")
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 3600
    assert job["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "gpu-jobs"
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["component"] == JOB_COMPONENT
    pod = template["spec"]
    assert pod["restartPolicy"] == "Never"
    main = pod["containers"][0]
    assert main["command"] == ["python", "/tkhub-tools/execute.py"] and "args" not in main
    assert "ports" not in main
    names = {e["name"] for e in main["env"]}
    assert not {n for n in names if n.startswith("JUPYTERHUB_")}  # no hub token in a job
    spec = json.loads(next(e["value"] for e in main["env"] if e["name"] == "TKHUB_JOB_SPEC"))
    assert spec["input"] == f"{HOME}/thinkube/notebooks/train/fine-tune.ipynb"
    assert spec["output"] == f"{HOME}/thinkube/notebooks/train/fine-tune.run-42.ipynb"
    assert spec["parameters"] == {"lr": 0.0001} and spec["result"] == "/dev/termination-log"
    stage = pod["initContainers"]
    assert [c["image"] for c in stage] == [HUB_IMAGE]  # no examples delivery in a job
    for version in ("1.31.0", "1.34.0"):
        kubernetes_validate.validate(job, version, strict=True)


async def test_a_queued_gpu_job_may_wait_for_gpus_that_are_taken(kubeconfig, inventory):
    from dataclasses import replace

    taken = replace(inventory, nodes=tuple(
        replace(n, pools=tuple(replace(p, allocated=p.total) for p in n.pools))
        for n in inventory.nodes
    ))  # fmt: skip
    assert taken.free == 0 and all_free(taken).free == inventory.free > 0


def ended_pod(phase: str, terminated: dict) -> dict:
    return {
        "status": {"phase": phase, "containerStatuses": [{"state": {"terminated": terminated}}]}
    }


def test_a_pod_end_is_the_job_outcome():
    ok = _ended(ended_pod("Succeeded", {"message": json.dumps({"state": "succeeded"})}))
    assert ok is not None and ok.state == "succeeded"
    cell = {"state": "failed", "cell": 3, "error": "ValueError: no", "reason": "cell [3] raised"}
    failed = _ended(ended_pod("Failed", {"message": json.dumps(cell)}))
    assert failed is not None and failed.failed_cell == 3 and failed.error == "ValueError: no"
    oom = _ended(ended_pod("Failed", {"reason": "OOMKilled", "exitCode": 137}))
    assert oom is not None and "ran out of memory" in oom.reason
    killed = _ended(ended_pod("Failed", {"reason": "Error", "exitCode": 143}))
    assert killed is not None and "without a result" in killed.reason
    assert _ended(ended_pod("Running", {})) is None and _ended(None) is None


def test_a_job_past_its_deadline_says_so():
    found = {"status": {"conditions": [
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}}  # fmt: skip
    outcome = _job_failed(found)
    assert outcome is not None and "time limit" in outcome.reason
    assert _job_failed({"status": {}}) is None
