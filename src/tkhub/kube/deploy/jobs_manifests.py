"""The jobs service's objects: its Deployment (the hub image), Service, database
volume, and the rights it needs (create and delete Jobs in the namespace; read their
pods and events, and the GPU inventory through the shared ClusterRole)."""

from __future__ import annotations

import json
from typing import Any

from tkhub.jobs import JOBS_PREFIX, JOBS_SERVICE
from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.deploy.service_objects import (
    Manifest,
    ServiceSpec,
    metadata,
    service_account,
    service_deployment,
    service_of,
)
from tkhub.kube.names import NOTEBOOKS_MOUNT, NOTEBOOKS_VOLUME, Names

JOBS_DATA = "/var/lib/tkhub"


def _meta(names: Names, name: str) -> dict[str, Any]:
    return metadata(names, name, "jobs")


def jobs_role(cfg: ClusterConfig) -> Manifest:
    names = cfg.names
    read = ["get", "list", "watch"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(names, names.jobs),
        "rules": [
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": [*read, "create", "delete"]},
            {"apiGroups": [""], "resources": ["pods", "events"], "verbs": read},
        ],
    }


def jobs_role_binding(cfg: ClusterConfig) -> Manifest:
    names = cfg.names
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(names, names.jobs),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.jobs},
        "subjects": [{"kind": "ServiceAccount", "name": names.jobs, "namespace": names.namespace}],
    }


def _env(cfg: ClusterConfig) -> list[dict[str, Any]]:
    names = cfg.names
    prefix = f"{JOBS_PREFIX}/"

    def secret(name: str, key: str) -> dict[str, Any]:
        return {"valueFrom": {"secretKeyRef": {"name": name, "key": key}}}

    env: list[dict[str, Any]] = [
        {"name": "TKHUB_NAMESPACE", "value": names.namespace},
        {"name": "TKHUB_RELEASE", "value": names.release},
        {"name": "TKHUB_CATALOG_URL", "value": names.catalog_url},
        {"name": "TKHUB_JOBS_HOST", "value": "0.0.0.0"},  # a pod's own address
        {"name": "TKHUB_JOBS_PORT", "value": str(names.jobs_port)},
        {"name": "TKHUB_JOBS_NOTEBOOKS", "value": NOTEBOOKS_MOUNT},
        {"name": "TKHUB_JOBS_RUNNER_IMAGE", "value": cfg.hub.image},
        {"name": "TKHUB_EXAMPLES_IMAGE", "value": cfg.hub.image},  # as the hub's: same pods
        {"name": "TKHUB_JOBS_QUEUE", "value": cfg.jobs.kueue_queue},
        # Secret names and keys only, as the hub's spawner has them
        {"name": "TKHUB_PLATFORM_SERVICES",
         "value": json.dumps([s.model_dump(mode="json") for s in cfg.services])},
        {"name": "JUPYTERHUB_API_URL", "value": f"http://hub.{names.namespace}.svc:8081/hub/api"},
        {"name": "JUPYTERHUB_SERVICE_NAME", "value": JOBS_SERVICE},
        {"name": "JUPYTERHUB_SERVICE_PREFIX", "value": prefix},
        {"name": "JUPYTERHUB_CLIENT_ID", "value": "service-jobs"},
        {"name": "JUPYTERHUB_OAUTH_CALLBACK_URL", "value": f"{prefix}oauth_callback"},
        # the chart generates the service's token and keeps it in its "hub" Secret
        {"name": "JUPYTERHUB_API_TOKEN", **secret("hub", "hub.services.jobs.apiToken")},
    ]  # fmt: skip
    ref = cfg.catalog.database_url
    if cfg.catalog.database == "external" and ref is not None:
        # its own tables and version table, beside the catalog's
        env.append({"name": "TKHUB_JOBS_DATABASE_URL", **secret(ref.name, ref.key)})
    else:
        env.append({"name": "TKHUB_JOBS_DATABASE_URL",
                    "value": f"sqlite:///{JOBS_DATA}/jobs.sqlite"})  # fmt: skip
    return env


def _volumes(cfg: ClusterConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    names = cfg.names
    data: dict[str, Any] = {"name": "data", "emptyDir": {}}
    if cfg.catalog.database != "external":
        data = {"name": "data", "persistentVolumeClaim": {"claimName": names.jobs_db_pvc}}
    notebooks = {
        "name": NOTEBOOKS_VOLUME.key,
        "persistentVolumeClaim": {"claimName": names.pvc(NOTEBOOKS_VOLUME.key), "readOnly": True},
    }
    mounts: list[dict[str, Any]] = [
        {"name": "data", "mountPath": JOBS_DATA},
        # every user's notebooks: submits are checked there, logs read there
        {"name": NOTEBOOKS_VOLUME.key, "mountPath": NOTEBOOKS_MOUNT, "readOnly": True},
    ]
    return [data, notebooks], mounts


def jobs_spec(cfg: ClusterConfig) -> ServiceSpec:
    names = cfg.names
    volumes, mounts = _volumes(cfg)
    return ServiceSpec(
        name=names.jobs, component="jobs", image=cfg.hub.image,
        module="tkhub.kube.jobs_service", port=names.jobs_port,
        health=f"{JOBS_PREFIX}/health", env=_env(cfg), volumes=volumes, mounts=mounts,
        memory="192Mi",
    )  # fmt: skip


def jobs_manifests(cfg: ClusterConfig) -> list[Manifest]:
    """In apply order (the database volume comes with the catalog's, in ``manifests``)."""
    spec = jobs_spec(cfg)
    return [
        service_account(cfg.names, spec),
        jobs_role(cfg),
        jobs_role_binding(cfg),
        service_deployment(cfg.names, spec),
        service_of(cfg.names, spec),
    ]
