"""``tkhub-cluster.yaml``: what the administrator says about the cluster.

One file drives ``render``, ``preflight``, ``apply``, ``verify`` and ``uninstall``.
Secrets are never in it: it names the Kubernetes Secrets that hold them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tkhub.kube.names import Names
from tkhub.quantity import QuantityError, parse_quantity
from tkhub.settings import OidcBase, ServiceBase, services_problem

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecretRef(_Model):
    """A key of a Secret in the deployment's namespace."""

    name: str = Field(pattern=DNS_LABEL)
    key: str


class Storage(_Model):
    class_name: str = Field("seaweedfs-storage", alias="class")
    # Set when the class is RWX but its provisioner is not in our known list.
    assume_rwx: bool = False
    notebooks: str = "100Gi"
    datasets: str = "500Gi"
    models: str = "500Gi"
    examples: str = "5Gi"
    catalog_db: str = "1Gi"
    jobs_db: str = "1Gi"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("notebooks", "datasets", "models", "examples", "catalog_db", "jobs_db")
    @classmethod
    def _quantity(cls, value: str) -> str:
        try:
            parse_quantity(value)
        except QuantityError as e:
            raise ValueError(f"{value!r} is not a Kubernetes quantity ({e})") from None
        return value


class Keycloak(OidcBase):
    """The realm's client; the same sign-in settings as ``oidc`` on one machine, with
    the client secret in a Secret."""

    client_secret: SecretRef = SecretRef(name="tkhub-oidc", key="client-secret")


class Registry(_Model):
    name: str
    url: str  # https://registry.example.org
    prefix: str = ""
    credentials: SecretRef | None = None  # a Secret key holding "user:password"


class Gpu(_Model):
    taint_key: str = "nvidia.com/gpu"
    taint_effect: Literal["NoSchedule", "NoExecute", "PreferNoSchedule"] = "NoSchedule"
    verify_image: str = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"


class Catalog(_Model):
    image: str = "registry.example.org/thinkube/tkhub-catalog:latest"
    database: Literal["sqlite-pvc", "external"] = "sqlite-pvc"
    # For "external": a Secret key holding a postgresql+psycopg:// URL.
    database_url: SecretRef | None = None


class Hub(_Model):
    image: str = "registry.example.org/thinkube/tkhub-hub:latest"
    cull_idle_timeout: int = 3600


class Examples(_Model):
    """Where the examples come from: the ones shipped in the hub image, or a git URL."""

    git_url: str | None = None
    ref: str = "main"
    schedule: str = "17 3 * * *"  # the CronJob's; daily by default


class Jobs(_Model):
    """The jobs service: notebooks run as batch/v1 Jobs (docs/jobs.md)."""

    # A Kueue LocalQueue in the namespace: Kueue admits GPU jobs instead of tkhub's queue.
    kueue_queue: str = Field("", pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$")


class ClusterService(ServiceBase):
    """A platform service in the cluster: each secret is a key of a Secret in the
    namespace, passed to pods by ``secretKeyRef``, never rendered into values."""

    secrets: dict[str, SecretRef] = Field(default_factory=dict)


class ClusterConfig(_Model):
    namespace: str = Field("tkhub", pattern=DNS_LABEL)
    release: str = Field("tkhub", pattern=DNS_LABEL)
    domain: str  # jupyter.example.org
    chart_version: str = "4.2.0"
    chart_repo: str = "https://hub.jupyter.org/helm-chart/"
    hub: Hub = Field(default_factory=Hub)
    catalog: Catalog = Field(default_factory=Catalog)
    storage: Storage = Field(default_factory=lambda: Storage.model_validate({}))
    keycloak: Keycloak
    registries: list[Registry] = Field(default_factory=list)
    gpu: Gpu = Field(default_factory=Gpu)
    examples: Examples = Field(default_factory=Examples)
    jobs: Jobs = Field(default_factory=lambda: Jobs.model_validate({}))
    services: list[ClusterService] = Field(default_factory=list)
    verify_image: str = "busybox:1.36"

    @property
    def names(self) -> Names:
        return Names(namespace=self.namespace, release=self.release)

    @field_validator("services")
    @classmethod
    def _unique_services(cls, value: list[ClusterService]) -> list[ClusterService]:
        problem = services_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("catalog")
    @classmethod
    def _external_needs_url(cls, value: Catalog) -> Catalog:
        if value.database == "external" and value.database_url is None:
            raise ValueError("database: external needs database_url (a Secret name and key)")
        return value


class ClusterConfigError(ValueError):
    """The config file is missing or wrong; ``str()`` names the file and field."""


def load_cluster_config(path: Path) -> ClusterConfig:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ClusterConfigError(
            f"{path} does not exist; copy examples/tkhub-cluster.yaml and edit it"
        ) from None
    except yaml.YAMLError as e:
        raise ClusterConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ClusterConfigError(f"{path}: expected a mapping at the top level")
    try:
        return ClusterConfig.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        raise ClusterConfigError(f"{path}: {where}: {first['msg']}{more}") from None
