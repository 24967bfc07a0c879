"""Selections become KubeSpawner settings; checked in KubeSpawner's real pod manifest."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import ApiClient
from kubespawner.objects import make_pod

from tkhub.gpu.kubernetes import inventory_from_objects
from tkhub.gpu.model import Placement
from tkhub.kube.placement import kubespawner_overrides
from tkhub.selection import SelectionError


async def manifest(overrides: dict) -> dict:
    pod = make_pod(
        name="jupyter-alice",
        cmd=["jupyterhub-singleuser"],
        port=8888,
        image="quay.io/jupyter/base-notebook:latest",
        node_selector=overrides.get("node_selector"),
        tolerations=overrides.get("tolerations"),
        extra_resource_limits=overrides.get("extra_resource_limits"),
        extra_resource_guarantees=overrides.get("extra_resource_guarantees"),
        env=overrides.get("environment"),
    )
    async with ApiClient() as api:
        return api.sanitize_for_serialization(pod)


def container(body: dict) -> dict:
    return body["spec"]["containers"][0]


def env_of(body: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container(body).get("env") or []}


@pytest.fixture
def inv(cluster):
    return inventory_from_objects(*cluster)


async def test_cpu_only_gets_no_gpu(inv):
    body = await manifest(kubespawner_overrides(Placement("cpu"), inv))
    assert "nvidia.com/gpu" not in str(container(body)["resources"])
    assert env_of(body)["NVIDIA_VISIBLE_DEVICES"] == "void"


async def test_auto_requests_gpus_and_tolerates_taint(inv):
    body = await manifest(kubespawner_overrides(Placement("auto", count=2), inv))
    res = container(body)["resources"]
    assert res["limits"]["nvidia.com/gpu"] == "2" and res["requests"]["nvidia.com/gpu"] == "2"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in body["spec"][
        "tolerations"
    ]
    assert env_of(body)["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert not body["spec"].get("nodeSelector")


async def test_node_placement_pins_hostname(inv):
    body = await manifest(kubespawner_overrides(Placement("node", "node-b", 1), inv))
    assert body["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "node-b"}


async def test_model_placement_selects_product(inv):
    body = await manifest(
        kubespawner_overrides(Placement("model", "NVIDIA-H100-80GB-HBM3", 1), inv)
    )
    assert body["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


async def test_mig_model_requests_mig_resource(inv):
    placement = Placement("model", "NVIDIA-A100-SXM4-40GB MIG 1g.5gb", 1)
    body = await manifest(kubespawner_overrides(placement, inv))
    assert container(body)["resources"]["limits"] == {"nvidia.com/mig-1g.5gb": "1"}
    assert body["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}


def test_unknown_model_is_a_selection_error(inv):
    with pytest.raises(SelectionError, match="no GPU model"):
        kubespawner_overrides(Placement("model", "RTX-9999", 1), inv)
