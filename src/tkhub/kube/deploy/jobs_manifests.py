"""The jobs service's objects: its Deployment (the hub image), Service, database
volume, and the rights it needs (create and delete Jobs in the namespace; read their
pods and events, and the GPU inventory through the shared ClusterRole)."""

from __future__ import annotations

import json
from typing import Any

from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.names import NOTEBOOKS_MOUNT, NOTEBOOKS_VOLUME, Names

Manifest = dict[str, Any]
JOBS_DATA = "/var/lib/tkhub"


def _meta(names: Names, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": names.namespace, "labels": names.labels("jobs")}


def jobs_service_account(cfg: ClusterConfig) -> Manifest:
    names = cfg.names
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(names, names.jobs)}


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
    prefix = "/services/jobs/"

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
        {"name": "TKHUB_JOBS_QUEUE", "value": cfg.jobs.kueue_queue},
        # Secret names and keys only, as the hub's spawner has them
        {"name": "TKHUB_PLATFORM_SERVICES",
         "value": json.dumps([s.model_dump(mode="json") for s in cfg.services])},
        {"name": "JUPYTERHUB_API_URL", "value": f"http://hub.{names.namespace}.svc:8081/hub/api"},
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


def jobs_deployment(cfg: ClusterConfig) -> Manifest:
    names = cfg.names
    labels = names.labels("jobs")
    # the chart's hub NetworkPolicy admits pods carrying this label to the hub API
    pod_labels = {**labels, "hub.jupyter.org/network-access-hub": "true"}
    volumes, mounts = _volumes(cfg)
    probe = {"httpGet": {"path": "/services/jobs/health", "port": "http"}, "periodSeconds": 10}
    container = {
        "name": "jobs",
        "image": cfg.hub.image,
        "command": ["python", "-m", "tkhub.kube.jobs_service"],
        "env": _env(cfg),
        "ports": [{"name": "http", "containerPort": names.jobs_port}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 6},
        "volumeMounts": mounts,
        "resources": {"requests": {"cpu": "50m", "memory": "192Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(names, names.jobs),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # one queue; SQLite never has two writers
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": names.jobs,
                    "securityContext": {"runAsUser": 1000, "fsGroup": 1000},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def jobs_service(cfg: ClusterConfig) -> Manifest:
    names = cfg.names
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(names, names.jobs),
        "spec": {
            "selector": names.labels("jobs"),
            "ports": [{"name": "http", "port": names.jobs_port, "targetPort": "http"}],
        },
    }


def jobs_manifests(cfg: ClusterConfig) -> list[Manifest]:
    """In apply order (the database volume comes with the catalog's, in ``manifests``)."""
    return [
        jobs_service_account(cfg),
        jobs_role(cfg),
        jobs_role_binding(cfg),
        jobs_deployment(cfg),
        jobs_service(cfg),
    ]
