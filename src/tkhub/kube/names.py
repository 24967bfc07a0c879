"""Every name tkhub gives a Kubernetes object, in one place.

``render``, ``apply``, ``verify``, ``uninstall`` and the hub's spawner all read
these: a check can never look for a PVC the deploy did not create.
"""

from __future__ import annotations

from dataclasses import dataclass

from tkhub import layout

MANAGED_BY = "tkhub"
FIELD_MANAGER = "tkhub"
HOME = "/home/jovyan"


@dataclass(frozen=True)
class SharedVolume:
    """A ReadWriteMany volume every user pod mounts under ``~/thinkube``."""

    key: str  # notebooks | datasets | models | examples
    subdir: str  # path under the home directory (tkhub.layout)
    read_only: bool = False
    per_user: bool = False  # each user mounts their own subdirectory of the volume

    @property
    def mount_path(self) -> str:
        return f"{HOME}/{self.subdir}"


# The user file layout (tkhub.layout): mounts sit under the home, never on it.
SHARED_VOLUMES: tuple[SharedVolume, ...] = (
    SharedVolume("notebooks", str(layout.NOTEBOOKS), per_user=True),
    SharedVolume("datasets", str(layout.DATASETS)),
    SharedVolume("models", str(layout.MODELS)),
    SharedVolume("examples", str(layout.EXAMPLES_REPO), read_only=True),
)
EXAMPLES_VOLUME = next(v for v in SHARED_VOLUMES if v.key == "examples")
NOTEBOOKS_VOLUME = next(v for v in SHARED_VOLUMES if v.key == "notebooks")
# Where the examples sync (Job, CronJob) and the delivery (init container) mount the
# same claims the servers mount under ~/thinkube.
EXAMPLES_MOUNT = "/tkhub/examples"
NOTEBOOKS_MOUNT = "/tkhub/notebooks"
SCRATCH_SUBDIR = str(layout.SCRATCH)
SCRATCH_VOLUME = "scratch"
USER_SUBPATH = "{username}"
# Users' jobs (batch/v1 Jobs and their pods) carry component=tkhub-job; not
# singleuser-server, so the hub's pod watch never takes them for servers.
JOB_COMPONENT = "tkhub-job"
JOB_ID_LABEL = "tkhub.io/job-id"
# tkhub's files for pods of users' images (``tkhub.jobs.stage``): the job runner, and
# the terminal client that servers mount as the ``tkhub`` command.
TOOLS_VOLUME = "tkhub-tools"
TOOLS_MOUNT = "/tkhub-tools"
CLIENT_COMMAND = "/usr/local/bin/tkhub"


@dataclass(frozen=True)
class Names:
    """Object names of one deployment, derived from its namespace and release."""

    namespace: str
    release: str = "tkhub"

    def pvc(self, key: str) -> str:
        return f"{self.release}-{key}"

    @property
    def data_pvcs(self) -> tuple[str, ...]:
        """PVCs holding user data: kept by ``uninstall`` unless ``--delete-data``."""
        return tuple(self.pvc(v.key) for v in SHARED_VOLUMES) + (
            self.catalog_db_pvc,
            self.jobs_db_pvc,
        )

    @property
    def catalog(self) -> str:
        return f"{self.release}-catalog"

    @property
    def catalog_db_pvc(self) -> str:
        return f"{self.release}-catalog-db"

    @property
    def inventory_cluster_role(self) -> str:
        # cluster-scoped: the namespace keeps two deployments on one cluster apart
        return f"{self.namespace}-{self.release}-gpu-inventory"

    @property
    def catalog_port(self) -> int:
        return 8011

    @property
    def catalog_url(self) -> str:
        """How the hub reaches the catalog: its Service, inside the namespace."""
        return f"http://{self.catalog}.{self.namespace}.svc:{self.catalog_port}"

    @property
    def jobs(self) -> str:
        return f"{self.release}-jobs"

    @property
    def jobs_db_pvc(self) -> str:
        return f"{self.release}-jobs-db"

    @property
    def jobs_port(self) -> int:
        return 8012

    @property
    def jobs_url(self) -> str:
        """How the hub and servers reach the jobs service: its Service."""
        return f"http://{self.jobs}.{self.namespace}.svc:{self.jobs_port}"

    def job(self, job_id: int) -> str:
        """A job's batch/v1 Job (its pods are named after it by the Job controller)."""
        return f"{self.release}-job-{job_id}"

    @property
    def chart_release(self) -> str:
        return self.release

    # Objects the Zero to JupyterHub chart creates (its fixed names).
    hub_deployment: str = "hub"
    proxy_deployment: str = "proxy"
    proxy_public_service: str = "proxy-public"
    hub_service: str = "hub"
    hub_service_account: str = "hub"
    hub_secret: str = "hub"

    @property
    def verify_writer_pod(self) -> str:
        return f"{self.release}-verify-write"

    @property
    def verify_reader_pod(self) -> str:
        return f"{self.release}-verify-read"

    @property
    def verify_gpu_pod(self) -> str:
        return f"{self.release}-verify-gpu"

    @property
    def examples_sync(self) -> str:
        """The install-time Job, and the CronJob (same pod) that syncs the examples."""
        return f"{self.release}-examples-sync"

    @property
    def verify_examples_job(self) -> str:
        return f"{self.release}-verify-examples"

    @property
    def verify_examples_pod(self) -> str:
        return f"{self.release}-verify-examples-read"

    def labels(self, component: str) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": "tkhub",
            "app.kubernetes.io/instance": self.release,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }

    @property
    def selector(self) -> str:
        """Label selector matching every object tkhub created in this deployment."""
        return (
            f"app.kubernetes.io/managed-by={MANAGED_BY},app.kubernetes.io/instance={self.release}"
        )


def singleuser_volumes(names: Names) -> tuple[list[dict], list[dict]]:
    """KubeSpawner ``volumes`` and ``volume_mounts``: the shared PVCs and scratch."""
    volumes: list[dict] = [
        {"name": v.key, "persistentVolumeClaim": {"claimName": names.pvc(v.key)}}
        for v in SHARED_VOLUMES
    ]
    volumes.append({"name": SCRATCH_VOLUME, "emptyDir": {}})
    mounts: list[dict] = []
    for v in SHARED_VOLUMES:
        mount: dict = {"name": v.key, "mountPath": v.mount_path}
        if v.per_user:
            mount["subPath"] = USER_SUBPATH  # KubeSpawner expands {username}
        if v.read_only:
            mount["readOnly"] = True
        mounts.append(mount)
    mounts.append({"name": SCRATCH_VOLUME, "mountPath": f"{HOME}/{SCRATCH_SUBDIR}"})
    return volumes, mounts


def examples_volumes(names: Names, *, with_notebooks: bool) -> tuple[list[dict], list[dict]]:
    """The examples claim (and the user's notebooks) for the sync and delivery pods:
    the very claims and subPath ``singleuser_volumes`` gives the servers."""
    chosen = [EXAMPLES_VOLUME, *([NOTEBOOKS_VOLUME] if with_notebooks else [])]
    volumes = [
        {"name": v.key, "persistentVolumeClaim": {"claimName": names.pvc(v.key)}} for v in chosen
    ]
    mounts: list[dict] = [{"name": EXAMPLES_VOLUME.key, "mountPath": EXAMPLES_MOUNT}]
    if with_notebooks:
        mounts[0]["readOnly"] = True
        mounts.append(
            {"name": NOTEBOOKS_VOLUME.key, "mountPath": NOTEBOOKS_MOUNT, "subPath": USER_SUBPATH}
        )
    return volumes, mounts


def examples_init_container(image: str, folder: str) -> dict:
    """Delivers the environment's examples into the user's notebooks before the server
    starts, as the server's user; it never fails the pod (delivery exits 0)."""
    _, mounts = examples_volumes(Names("unused"), with_notebooks=True)
    return {
        "name": "examples",
        "image": image,
        "command": [
            "python", "-m", "tkhub.examples.delivery",
            "--repo", f"{EXAMPLES_MOUNT}/current", "--folder", folder,
            "--notebooks", NOTEBOOKS_MOUNT,
        ],
        "volumeMounts": mounts,
        "securityContext": {"runAsUser": 1000, "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False},
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}},
    }  # fmt: skip


def tools_init_container(image: str) -> dict:
    """Stages the job runner and the ``tkhub`` terminal client (``tkhub.jobs.stage``)."""
    return {
        "name": "tkhub-tools",
        "image": image,
        "command": ["python", "-m", "tkhub.jobs.stage", TOOLS_MOUNT],
        "volumeMounts": [{"name": TOOLS_VOLUME, "mountPath": TOOLS_MOUNT}],
        "securityContext": {"runAsUser": 1000, "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
    }  # fmt: skip


def tools_volume() -> dict:
    return {"name": TOOLS_VOLUME, "emptyDir": {}}


def client_mount() -> dict:
    """The staged client as ``tkhub`` on the notebook container's PATH."""
    return {"name": TOOLS_VOLUME, "mountPath": CLIENT_COMMAND, "subPath": "tkhub",
            "readOnly": True}  # fmt: skip
