"""``tkhub deploy plan``: what ``apply`` would change, checked by the API server itself.

Every object tkhub applies goes to the API server as a server-side apply with
``dryRun=All``: validation, defaulting and admission run as for the real apply,
and nothing is stored. ``apply`` runs the same plan first, so an object the
server rejects stops it before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.deploy.kubeapi import KubeApi, KubeError
from tkhub.kube.deploy.manifests import render_manifests


@dataclass(frozen=True)
class Planned:
    """One object: ``action`` create, update or unchanged; ``rejected`` the server's reason."""

    kind: str
    name: str
    namespace: str
    action: str
    rejected: str = ""

    @property
    def where(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


def _missing_namespace(error: KubeError, namespace: str) -> bool:
    """A dry run in a namespace the plan itself creates first: the server cannot
    judge it yet (NamespaceLifecycle admission refuses it before validation)."""
    return error.status == 404 and f'namespaces "{namespace}" not found' in str(error)


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keep = ("spec", "data", "rules", "subjects", "roleRef", "metadata")
    strip = {"resourceVersion", "managedFields", "generation", "creationTimestamp", "uid"}

    def view(obj: dict[str, Any]) -> dict[str, Any]:
        out = {k: obj.get(k) for k in keep}
        out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in strip}
        return out

    return view(old) == view(new)


async def plan_object(api: KubeApi, obj: dict[str, Any], fresh_namespace: str) -> Planned:
    meta = obj["metadata"]
    namespace = meta.get("namespace", "")
    existing = await api.get(obj["kind"], meta["name"], namespace or None)
    action = "create" if existing is None else "update"
    try:
        result = await api.apply(obj, dry_run=True)
    except KubeError as e:
        if namespace == fresh_namespace and _missing_namespace(e, namespace):
            return Planned(obj["kind"], meta["name"], namespace, action)
        return Planned(obj["kind"], meta["name"], namespace, action, rejected=str(e))
    if existing is not None and _same(existing, result):
        action = "unchanged"
    return Planned(obj["kind"], meta["name"], namespace, action)


async def plan(
    api: KubeApi, cfg: ClusterConfig, objects: list[dict[str, Any]] | None = None
) -> list[Planned]:
    """What apply would do to each object (``objects``, by default those ``cfg``
    renders), in apply order."""
    fresh = "" if await api.get("Namespace", cfg.namespace) else cfg.namespace
    if objects is None:
        objects = render_manifests(cfg)
    return [await plan_object(api, obj, fresh) for obj in objects]
