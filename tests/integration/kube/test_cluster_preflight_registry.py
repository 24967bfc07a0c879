"""Preflight reaches each catalog registry with the credentials from its Secret, read
from the real kube-apiserver (a namespace per test)."""

from __future__ import annotations

import asyncio
import base64

from real_cluster import RealCluster

from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.deploy.kubeapi import KubeApi, load_connection
from tkhub.kube.deploy.preflight import check_registry


def config(url: str, namespace: str) -> ClusterConfig:
    return ClusterConfig.model_validate(
        {
            "namespace": namespace,
            "domain": "jupyter.example.org",
            "keycloak": {"issuer": "https://auth.example.org/realms/x"},
            "registries": [
                {
                    "name": "lab",
                    "url": url,
                    "credentials": {"name": "tkhub-registry", "key": "auth"},
                }
            ],
        }
    )


def store_credentials(cluster: RealCluster, namespace: str, value: str) -> None:
    data = {"auth": base64.b64encode(value.encode()).decode()}
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "data": data,
                   "metadata": {"name": "tkhub-registry", "namespace": namespace}})  # fmt: skip


def check(cluster: RealCluster, cfg: ClusterConfig):
    async def run():
        async with KubeApi(await load_connection(cluster.kubeconfig)) as api:
            return await check_registry(api, cfg, cfg.registries[0])

    return asyncio.run(run())


def test_registry_with_good_credentials(cluster: RealCluster, ns: str, registry):
    url, user, password = registry
    store_credentials(cluster, ns, f"{user}:{password}")
    result = check(cluster, config(url, ns))
    assert result.outcome == "pass", result.message
    assert "with credentials" in result.message


def test_registry_refuses_wrong_credentials(cluster: RealCluster, ns: str, registry):
    url, user, _ = registry
    store_credentials(cluster, ns, f"{user}:wrong")
    result = check(cluster, config(url, ns))
    assert result.failed and "refused the credentials (401)" in result.message
    assert "wrong" not in result.message  # never echo a secret


def test_registry_not_answering(cluster: RealCluster, ns: str, registry):
    url, user, password = registry
    store_credentials(cluster, ns, f"{user}:{password}")
    result = check(cluster, config("http://127.0.0.1:9", ns))
    assert result.failed and "did not answer" in result.message


def test_missing_credentials_secret(cluster: RealCluster, ns: str, registry):
    result = check(cluster, config(registry[0], ns))  # no Secret in this namespace
    assert result.failed and "tkhub-registry" in result.message and "missing" in result.message
