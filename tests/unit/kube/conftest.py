"""Fixtures for the Kubernetes-mode unit tests (deploy configuration).

- ``cfg``: a ``ClusterConfig`` as ``examples/tkhub-cluster.yaml`` gives it.
- ``cfg_external``: the same with the catalog on an external PostgreSQL URL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tkhub.kube.deploy.cluster import ClusterConfig, load_cluster_config

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
