"""Plain manifests of what tkhub adds beside the JupyterHub chart, as pure functions.

Each builder returns one object as a dict; ``render_manifests`` returns them all in
apply order. Names come from ``tkhub.kube.names`` only.
"""

from __future__ import annotations

from typing import Any

from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.deploy.jobs_manifests import jobs_manifests
from tkhub.kube.deploy.service_objects import (
    Manifest,
    ServiceSpec,
    metadata,
    service_account,
    service_deployment,
    service_of,
)
from tkhub.kube.names import EXAMPLES_MOUNT, SHARED_VOLUMES, examples_volumes

CATALOG_DATA = "/var/lib/tkhub"


def namespace(cfg: ClusterConfig) -> Manifest:
    names = cfg.names
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": names.namespace, "labels": names.labels("namespace")},
    }


def pvc(cfg: ClusterConfig, name: str, size: str, access: str, component: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(cfg.names, name, component),
        "spec": {
            "accessModes": [access],
            "storageClassName": cfg.storage.class_name,
            "resources": {"requests": {"storage": size}},
        },
    }


def shared_pvcs(cfg: ClusterConfig) -> list[Manifest]:
    """The ReadWriteMany volumes every user pod mounts (notebooks, datasets, ...)."""
    return [
        pvc(cfg, cfg.names.pvc(v.key), getattr(cfg.storage, v.key), "ReadWriteMany", "storage")
        for v in SHARED_VOLUMES
    ]


def catalog_spec(cfg: ClusterConfig) -> ServiceSpec:
    names = cfg.names
    volumes, mounts = _catalog_volumes(cfg)
    return ServiceSpec(
        name=names.catalog, component="catalog", image=cfg.catalog.image,
        module="tkhub.kube.catalog_service", port=names.catalog_port, health="/health",
        env=_catalog_env(cfg), volumes=volumes, mounts=mounts,
    )  # fmt: skip


def inventory_cluster_role(cfg: ClusterConfig) -> Manifest:
    """Read nodes and pods cluster-wide: the GPU inventory counts every GPU pod.

    Bound to the catalog (``GET /api/v1/nodes/gpu``), to the hub, whose spawner
    re-reads the inventory at each start, and to the jobs service (its queue).
    """
    names = cfg.names
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(names, names.inventory_cluster_role, "inventory", namespaced=False),
        "rules": [
            {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}
        ],
    }


def inventory_cluster_role_binding(cfg: ClusterConfig) -> Manifest:
    names = cfg.names
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(names, names.inventory_cluster_role, "inventory", namespaced=False),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": names.inventory_cluster_role,
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": account, "namespace": names.namespace}
            for account in (names.catalog, names.hub_service_account, names.jobs)
        ],
    }


def _catalog_env(cfg: ClusterConfig) -> list[dict[str, Any]]:
    names = cfg.names
    env: list[dict[str, Any]] = [
        {"name": "TKHUB_CATALOG_PORT", "value": str(names.catalog_port)},
        {"name": "TKHUB_CATALOG_HOST", "value": "0.0.0.0"},  # a pod's own address
        {"name": "TKHUB_DATA_DIR", "value": CATALOG_DATA},
        {"name": "JUPYTERHUB_API_URL", "value": f"http://hub.{names.namespace}.svc:8081/hub/api"},
        {"name": "JUPYTERHUB_SERVICE_PREFIX", "value": "/services/catalog/"},
        {
            # The chart generates the service token and keeps it in its "hub" Secret.
            "name": "JUPYTERHUB_API_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hub", "key": "hub.services.catalog.apiToken"}},
        },
    ]
    ref = cfg.catalog.database_url
    if cfg.catalog.database == "external" and ref is not None:
        env.append(
            {
                "name": "TKHUB_CATALOG_DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
    return env


def _catalog_volumes(cfg: ClusterConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if cfg.catalog.database != "sqlite-pvc":
        return [{"name": "data", "emptyDir": {}}], [{"name": "data", "mountPath": CATALOG_DATA}]
    claim = {"claimName": cfg.names.catalog_db_pvc}
    return (
        [{"name": "data", "persistentVolumeClaim": claim}],
        [{"name": "data", "mountPath": CATALOG_DATA}],
    )


def examples_sync_pod(cfg: ClusterConfig) -> dict[str, Any]:
    """The pod template of the examples sync: the hub image (it carries tkhub and the
    shipped examples) with the examples claim the servers mount. A Job's pod does not
    start before its volume is bound, so the sync never runs against no volume."""
    names = cfg.names
    volumes, mounts = examples_volumes(names, with_notebooks=False)
    command = ["python", "-m", "tkhub.examples", "--root", EXAMPLES_MOUNT]
    if cfg.examples.git_url:
        command += ["--git-url", cfg.examples.git_url, "--ref", cfg.examples.ref]
    return {
        "metadata": {"labels": names.labels("examples")},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 1000, "fsGroup": 1000},
            "containers": [
                {
                    "name": "sync",
                    "image": cfg.hub.image,
                    "command": command,
                    "volumeMounts": mounts,
                    "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
                }
            ],
            "volumes": volumes,
        },
    }


def examples_sync_job(cfg: ClusterConfig, name: str | None = None) -> Manifest:
    """The sync at install (``apply``), and the one ``verify`` runs."""
    names = cfg.names
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(names, name or names.examples_sync, "examples"),
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 86400,
            "template": examples_sync_pod(cfg),
        },
    }


def examples_sync_cronjob(cfg: ClusterConfig) -> Manifest:
    names = cfg.names
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(names, names.examples_sync, "examples"),
        "spec": {
            "schedule": cfg.examples.schedule,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": examples_sync_pod(cfg)}},
        },
    }


def render_manifests(cfg: ClusterConfig) -> list[Manifest]:
    """Everything tkhub applies itself, in apply order (namespace first)."""
    objects = [namespace(cfg), *shared_pvcs(cfg)]
    if cfg.catalog.database == "sqlite-pvc":  # else both use the external PostgreSQL
        objects.append(
            pvc(cfg, cfg.names.catalog_db_pvc, cfg.storage.catalog_db, "ReadWriteOnce", "catalog")
        )
        objects.append(
            pvc(cfg, cfg.names.jobs_db_pvc, cfg.storage.jobs_db, "ReadWriteOnce", "jobs")
        )
    objects += [
        service_account(cfg.names, catalog_spec(cfg)),
        inventory_cluster_role(cfg),
        inventory_cluster_role_binding(cfg),
        service_deployment(cfg.names, catalog_spec(cfg)),
        service_of(cfg.names, catalog_spec(cfg)),
        examples_sync_job(cfg),
        examples_sync_cronjob(cfg),
        *jobs_manifests(cfg),
    ]
    return objects
