"""Fixtures for the Kubernetes-mode unit tests.

- ``cfg``: a ``ClusterConfig`` as ``examples/tkhub-cluster.yaml`` gives it.
- ``cfg_external``: the same with the catalog on an external PostgreSQL URL.
- ``inventory``: nodes ``cpu-1``, ``gpu-a`` (two H100) and ``mig-a`` (seven A100 MIG
  1g.10gb slices), nothing taken.
- ``kubeconfig``: a kubeconfig pointing nowhere, so a spawner can be created.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio.config import kube_config

from tkhub.gpu.kubernetes import inventory_from_objects
from tkhub.kube.deploy.cluster import ClusterConfig, load_cluster_config

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tkhub-cluster.yaml"


@pytest.fixture
def cfg() -> ClusterConfig:
    return load_cluster_config(EXAMPLE)


@pytest.fixture
def cfg_external(cfg: ClusterConfig) -> ClusterConfig:
    data = cfg.model_dump(by_alias=True)
    data["catalog"]["database"] = "external"
    data["catalog"]["database_url"] = {"name": "tkhub-catalog-db", "key": "url"}
    return ClusterConfig.model_validate(data)


def node(name: str, resources: dict[str, str], product: str | None = None) -> dict:
    labels = {"kubernetes.io/hostname": name}
    if product:
        labels |= {"nvidia.com/gpu.product": product, "nvidia.com/gpu.present": "true"}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}] if product else []},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", **resources},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


@pytest.fixture
def inventory():
    nodes = [
        node("cpu-1", {}),
        node("gpu-a", {"nvidia.com/gpu": "2"}, H100),
        node("mig-a", {"nvidia.com/mig-1g.10gb": "7"}, A100),
    ]
    return inventory_from_objects(nodes, [])


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KubeSpawner reads a kubeconfig when created; this one points nowhere."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    # kubernetes_asyncio reads $KUBECONFIG once, at import: point its default here
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
