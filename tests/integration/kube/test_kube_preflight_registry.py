"""Preflight reaches each catalog registry with the credentials from its Secret."""

from __future__ import annotations

import asyncio
import base64

from kube_support import NAMESPACE, Kube

from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.deploy.kubeapi import KubeApi, load_connection
from tkhub.kube.deploy.preflight import check_registry


def config(url: str) -> ClusterConfig:
    return ClusterConfig.model_validate(
        {
            "namespace": NAMESPACE,
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


def store_credentials(kube: Kube, value: str) -> None:
    data = {"auth": base64.b64encode(value.encode()).decode()}
    kube.put(
        "secrets", {"metadata": {"name": "tkhub-registry", "namespace": NAMESPACE}, "data": data}
    )


def check(kube: Kube, cfg: ClusterConfig):
    async def run():
        async with KubeApi(await load_connection(kube.kubeconfig)) as api:
            return await check_registry(api, cfg, cfg.registries[0])

    return asyncio.run(run())


def test_registry_with_good_credentials(kube: Kube, registry):
    url, user, password = registry
    store_credentials(kube, f"{user}:{password}")
    result = check(kube, config(url))
    assert result.outcome == "pass", result.message
    assert "with credentials" in result.message


def test_registry_refuses_wrong_credentials(kube: Kube, registry):
    url, user, _ = registry
    store_credentials(kube, f"{user}:wrong")
    result = check(kube, config(url))
    assert result.failed and "refused the credentials (401)" in result.message
    assert "wrong" not in result.message  # never echo a secret


def test_registry_not_answering(kube: Kube, registry):
    url, user, password = registry
    store_credentials(kube, f"{user}:{password}")
    result = check(kube, config("http://127.0.0.1:9"))
    assert result.failed and "did not answer" in result.message


def test_missing_credentials_secret(kube: Kube, registry):
    kube.emulator.call(kube.emulator.store.remove("secrets", NAMESPACE, "tkhub-registry"))
    result = check(kube, config(registry[0]))
    assert result.failed and "tkhub-registry" in result.message and "missing" in result.message
