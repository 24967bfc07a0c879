"""TkKubeSpawner's real pod manifest for each kind of selection, field by field.

The spawner is configured as the hub image configures it (``tkhub.kube.hub_config.configure``);
no API call is made: the inventory is given, as ``fetch_inventory`` would return it.
"""

from __future__ import annotations

import types

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient
from traitlets.config import Config

from tkhub.catalog.hub_tokens import CATALOG_ADMIN_SCOPE
from tkhub.catalog.schemas import ImagePublic
from tkhub.errors import SpawnRefused
from tkhub.gpu.model import Placement
from tkhub.kube.hub_config import configure
from tkhub.kube.names import HOME
from tkhub.kube.spawner import TkKubeSpawner
from tkhub.selection import Selection

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
IMAGE = "registry.example.org/thinkube/tk-jupyter-ml:2.1"


def entry(gpu: str = "optional", **resources: str) -> ImagePublic:
    return ImagePublic(name="ml", display_name="ML", image=IMAGE, gpu=gpu, resources=resources)


async def manifest(
    placement: Placement,
    inventory,
    image: ImagePublic | None = None,
    *,
    groups: tuple[str, ...] = (),
    services: list[dict] | None = None,
    examples_image: str = "",
) -> dict:
    config = Config()
    configure(config, environ={"TKHUB_NAMESPACE": "tkhub", "TKHUB_CATALOG_TOKEN": "t0ken",
                               "TKHUB_EXAMPLES_IMAGE": examples_image})  # fmt: skip
    if services is not None:  # as the chart's hub.config passes the cluster file's services
        config.TkKubeSpawner.platform_services = services
    user = types.SimpleNamespace(
        name="alice", id=7, url="/user/alice/", admin=False,
        groups=[types.SimpleNamespace(name=g) for g in groups],
    )  # fmt: skip
    hub = types.SimpleNamespace(
        api_url="http://hub:8081/hub/api",
        public_host="",
        base_url="/hub/",
        url="http://hub:8081/hub/",
    )
    spawner = TkKubeSpawner(user=user, hub=hub, config=config)
    await spawner.apply_selection(Selection(image or entry(), placement), inventory)
    async with ApiClient() as api:
        return dict(api.sanitize_for_serialization(await spawner.get_pod_manifest()))


def container(pod: dict) -> dict:
    return pod["spec"]["containers"][0]


def env(pod: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container(pod).get("env") or []}


def assert_shared_mounts(pod: dict) -> None:
    mounts = {m["mountPath"]: m for m in container(pod)["volumeMounts"]}
    assert HOME not in mounts and HOME + "/" not in mounts  # never over the home
    assert mounts[f"{HOME}/thinkube/notebooks"] == {
        "name": "notebooks",
        "mountPath": f"{HOME}/thinkube/notebooks",
        "subPath": "alice",
    }
    assert mounts[f"{HOME}/thinkube/datasets"]["name"] == "datasets"
    assert mounts[f"{HOME}/thinkube/models"]["name"] == "models"
    assert mounts[f"{HOME}/thinkube/examples-repo"]["readOnly"] is True
    assert mounts[f"{HOME}/scratch"]["name"] == "scratch"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["notebooks"]["persistentVolumeClaim"] == {"claimName": "tkhub-notebooks"}
    assert volumes["scratch"] == {"name": "scratch", "emptyDir": {}}
    assert container(pod)["workingDir"] == f"{HOME}/thinkube/notebooks"


async def test_cpu_only(kubeconfig, inventory):
    pod = await manifest(Placement("cpu"), inventory, entry(cpu_limit="4", mem_limit="16Gi"))
    assert container(pod)["image"] == IMAGE
    assert container(pod)["resources"]["limits"] == {"cpu": 4.0, "memory": 16 * 2**30}
    assert "nodeSelector" not in pod["spec"] or not pod["spec"]["nodeSelector"]
    assert not any(t.get("key") == "nvidia.com/gpu" for t in pod["spec"].get("tolerations") or [])
    assert env(pod)["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert_shared_mounts(pod)


async def test_any_gpu(kubeconfig, inventory):
    pod = await manifest(Placement("auto", count=2), inventory)
    resources = container(pod)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "2"
    assert resources["requests"]["nvidia.com/gpu"] == "2"
    assert not pod["spec"].get("nodeSelector")  # the scheduler picks the node
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"][
        "tolerations"
    ]
    assert env(pod)["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert "NVIDIA_VISIBLE_DEVICES" not in env(pod)  # the device plugin sets it
    assert_shared_mounts(pod)


async def test_gpu_model(kubeconfig, inventory):
    pod = await manifest(Placement("model", H100, 1), inventory)
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": H100}
    assert container(pod)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert_shared_mounts(pod)


async def test_node(kubeconfig, inventory):
    pod = await manifest(Placement("node", "gpu-a", 1), inventory)
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "gpu-a"}
    assert container(pod)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert_shared_mounts(pod)


async def test_mig_profile(kubeconfig, inventory):
    mig_model = f"{A100} MIG 1g.10gb"
    pod = await manifest(Placement("model", mig_model, 1), inventory)
    limits = container(pod)["resources"]["limits"]
    assert limits["nvidia.com/mig-1g.10gb"] == "1"
    assert "nvidia.com/gpu" not in limits
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": A100}
    assert_shared_mounts(pod)


async def test_a_new_selection_drops_the_last_ones_gpu(kubeconfig, inventory):
    config = Config()
    configure(config, environ={"TKHUB_NAMESPACE": "tkhub"})
    user = types.SimpleNamespace(name="bob", id=8, url="/user/bob/", groups=[], admin=False)
    hub = types.SimpleNamespace(
        api_url="http://h/hub/api", public_host="", base_url="/hub/", url="http://h/hub/"
    )
    spawner = TkKubeSpawner(user=user, hub=hub, config=config)
    await spawner.apply_selection(Selection(entry(), Placement("node", "gpu-a", 1)), inventory)
    assert spawner.extra_resource_limits == {"nvidia.com/gpu": "1"}
    await spawner.apply_selection(Selection(entry(), Placement("cpu")), inventory)
    assert spawner.extra_resource_limits == {}
    assert spawner.node_selector == {}
    assert spawner.environment["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert "NVIDIA_DRIVER_CAPABILITIES" not in spawner.environment


async def test_every_environment_gets_its_examples_common_ones_at_least(kubeconfig, inventory):
    def delivered_folder(pod: dict) -> str:
        (init,) = [c for c in pod["spec"]["initContainers"] if c["name"] == "examples"]
        return str(init["command"][init["command"].index("--folder") + 1])

    hub_image = "registry.example.org/tkhub-hub:1"
    scipy = entry().model_copy(update={"examples": "scipy"})
    pod = await manifest(Placement("cpu"), inventory, scipy, examples_image=hub_image)
    assert delivered_folder(pod) == "scipy"  # delivered with common/
    pod = await manifest(Placement("cpu"), inventory, entry(), examples_image=hub_image)
    assert delivered_folder(pod) == "common"  # names no folder of its own


async def test_local_environment_is_refused(kubeconfig, inventory):
    local = ImagePublic(name="py", kind="local", python="/usr/bin/python3")
    with pytest.raises(SpawnRefused, match="local Python environment"):
        await manifest(Placement("cpu"), inventory, local)


async def test_services_by_secret_key_ref_for_their_groups_only(kubeconfig, inventory):
    services = [
        {"name": "MLflow", "env": {"MLFLOW_TRACKING_URI": "http://mlflow.mlflow.svc:5000"}},
        {"name": "LLM gateway", "env": {"OPENAI_BASE_URL": "http://gw:4000/v1"},
         "secrets": {"OPENAI_API_KEY": {"name": "tkhub-llm-gateway", "key": "api-key"}},
         "groups": ["ml"]},
    ]  # fmt: skip
    pod = await manifest(Placement("any", None, 1), inventory, groups=("/ml",), services=services)
    by_name = {e["name"]: e for e in container(pod)["env"]}
    assert by_name["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.mlflow.svc:5000"
    assert by_name["OPENAI_API_KEY"] == {
        "name": "OPENAI_API_KEY",
        "valueFrom": {
            "secretKeyRef": {"name": "tkhub-llm-gateway", "key": "api-key", "optional": True}
        },
    }
    for version in ("1.31.0", "1.34.0"):
        kubernetes_validate.validate(pod, version, strict=True)

    outsider = await manifest(Placement("cpu"), inventory, services=services)
    names = set(env(outsider))
    assert "MLFLOW_TRACKING_URI" in names and not {"OPENAI_API_KEY", "OPENAI_BASE_URL"} & names


def test_hub_configure():
    config = Config()
    configure(config, environ={"TKHUB_NAMESPACE": "lab", "TKHUB_CATALOG_TOKEN": "x"})
    assert config.JupyterHub.spawner_class == "tkhub.kube.spawner.TkKubeSpawner"
    assert config.TkKubeSpawner.catalog_url == "http://tkhub-catalog.lab.svc:8011"
    assert config.TkKubeSpawner.catalog_token == "x"
    assert CATALOG_ADMIN_SCOPE in config.JupyterHub.custom_scopes
    # servers reach the jobs service with their own token
    assert config.TkKubeSpawner.jobs_url == "http://tkhub-jobs.lab.svc:8012/services/jobs"
    assert "access:services!service=jobs" in config.Spawner.server_token_scopes
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in config.KubeSpawner.volumes
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["tkhub-notebooks", "tkhub-datasets", "tkhub-models", "tkhub-examples"]
