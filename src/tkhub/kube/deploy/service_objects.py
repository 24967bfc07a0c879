"""The shape tkhub's own services (the catalog, the jobs service) share: one replica
of the service's module on an HTTP port, reachable by the hub, and a Service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tkhub.kube.names import Names

Manifest = dict[str, Any]


def metadata(names: Names, name: str, component: str, namespaced: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": names.labels(component)}
    if namespaced:
        meta["namespace"] = names.namespace
    return meta


@dataclass(frozen=True)
class ServiceSpec:
    """One service: its object name and component label, image, module and port."""

    name: str
    component: str
    image: str
    module: str  # run as ``python -m MODULE``
    port: int
    health: str  # the readiness and liveness path
    env: list[dict[str, Any]]
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    memory: str = "128Mi"


def service_deployment(names: Names, spec: ServiceSpec) -> Manifest:
    labels = names.labels(spec.component)
    # the chart's hub NetworkPolicy admits pods carrying this label to the hub API
    pod_labels = {**labels, "hub.jupyter.org/network-access-hub": "true"}
    probe = {"httpGet": {"path": spec.health, "port": "http"}, "periodSeconds": 10}
    container = {
        "name": spec.component,
        "image": spec.image,
        "command": ["python", "-m", spec.module],
        "env": spec.env,
        "ports": [{"name": "http", "containerPort": spec.port}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 6},
        "volumeMounts": spec.mounts,
        "resources": {"requests": {"cpu": "50m", "memory": spec.memory}},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(names, spec.name, spec.component),
        "spec": {
            "replicas": 1,
            # SQLite on a volume, one queue: never two of them during a rollout
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": spec.name,
                    "securityContext": {"runAsUser": 1000, "fsGroup": 1000},
                    "containers": [container],
                    "volumes": spec.volumes,
                },
            },
        },
    }


def service_of(names: Names, spec: ServiceSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(names, spec.name, spec.component),
        "spec": {
            "selector": names.labels(spec.component),
            "ports": [{"name": "http", "port": spec.port, "targetPort": "http"}],
        },
    }


def service_account(names: Names, spec: ServiceSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(names, spec.name, spec.component),
    }
