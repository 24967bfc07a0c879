"""``tkhub deploy uninstall``: remove what tkhub created; user data stays by default."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.deploy.helm import HelmError, run_helm, uninstall_args
from tkhub.kube.deploy.kubeapi import KubeApi
from tkhub.kube.deploy.manifests import render_manifests
from tkhub.kube.names import JOB_COMPONENT


async def uninstall(
    api: KubeApi,
    cfg: ClusterConfig,
    progress: Callable[[str], None],
    *,
    delete_data: bool = False,
    kubeconfig: Path | None = None,
) -> list[str]:
    """Delete the release and tkhub's objects; returns the names of objects kept."""
    names = cfg.names
    try:
        await run_helm(uninstall_args(cfg), progress, kubeconfig)
    except HelmError as e:
        if "not found" not in str(e):
            raise
        progress(f"release {names.chart_release} was not installed")
    # users' jobs first: the service that follows them goes next
    for job in await api.list("Job", names.namespace, labelSelector=f"component={JOB_COMPONENT}"):
        name = job["metadata"]["name"]
        gone = await api.delete("Job", name, names.namespace)
        progress(f"deleted Job {name} (a user's job)" if gone else f"Job {name} was already gone")
    kept: list[str] = []
    for obj in reversed(render_manifests(cfg)):
        kind, meta = obj["kind"], obj["metadata"]
        label = f"{kind} {meta['name']}"
        if not delete_data and (
            kind == "Namespace"
            or (kind == "PersistentVolumeClaim" and meta["name"] in names.data_pvcs)
        ):
            kept.append(label)
            continue
        gone = await api.delete(kind, meta["name"], meta.get("namespace"))
        progress(f"deleted {label}" if gone else f"{label} was already gone")
    if kept:
        progress("kept (user data; remove with --delete-data): " + ", ".join(kept))
    return kept
