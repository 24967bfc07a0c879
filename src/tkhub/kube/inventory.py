"""The cluster's GPU inventory, read from the Kubernetes API (nodes and live pods).

One reader for the hub (``TkKubeSpawner.fetch_inventory``) and the catalog service
(``GET /api/v1/nodes/gpu`` in the cluster); both are bound to the inventory role.
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.config.config_exception import ConfigException

from tkhub.errors import SpawnRefused
from tkhub.gpu.kubernetes import inventory_from_objects
from tkhub.gpu.model import Inventory
from tkhub.kube.apijson import read_json

LIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"


async def _list_json(method: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return list((await read_json(method, **kwargs) or {}).get("items") or [])


async def read_inventory(core: client.CoreV1Api) -> Inventory:
    """GPU nodes and what is free; ``SpawnRefused`` with the reason if the API fails."""
    try:
        nodes = await _list_json(core.list_node)
        pods = await _list_json(core.list_pod_for_all_namespaces, field_selector=LIVE_PODS)
    except Exception as e:
        raise SpawnRefused(
            "The GPU inventory could not be read from the Kubernetes API; "
            "ask your administrator to check the hub's access to nodes and pods.",
            log_message=f"listing nodes/pods failed: {e!r}",
        ) from e
    return inventory_from_objects(nodes, pods)


async def load_client_config() -> None:
    """In-cluster service account config, else the kubeconfig (``KUBECONFIG``)."""
    try:
        config.load_incluster_config()
    except ConfigException:
        await config.load_kube_config()


class ClusterInventory:
    """An async callable giving the inventory, on one API client opened on first use."""

    def __init__(self) -> None:
        self._api: client.ApiClient | None = None

    async def __call__(self) -> Inventory:
        if self._api is None:
            await load_client_config()
            self._api = client.ApiClient()
        return await read_inventory(client.CoreV1Api(self._api))
