"""``tkhub deploy preflight``: what the cluster must offer before anything is applied.

Each check is one line: what is missing and how to fix it. Run alone and as the
first step of ``apply``; a GPU-less cluster is a warning, not a failure.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Callable

import httpx

from tkhub.catalog.registry.bearer import Credentials, RegistryAuth
from tkhub.kube.deploy.checks import Check, failed, passed
from tkhub.kube.deploy.cluster import ClusterConfig, Registry
from tkhub.kube.deploy.kubeapi import KubeApi, KubeError

MIN_VERSION = (1, 28)
MAX_VERSION = (1, 35)
# Provisioners known to give ReadWriteMany volumes.
RWX_PROVISIONERS = (
    "seaweedfs-csi-driver",
    "juicefs.csi.juicefs.com",
    "nfs.csi.k8s.io",
    "cluster.local/nfs-subdir-external-provisioner",
    "k8s-sigs.io/nfs-subdir-external-provisioner",
    "cephfs.csi.ceph.com",
    "rook-ceph.cephfs.csi.ceph.com",
    "efs.csi.aws.com",
    "file.csi.azure.com",
    "filestore.csi.storage.gke.io",
    "driver.longhorn.io",  # RWX through its share manager
)


def _version(info: dict) -> tuple[int, int]:
    minor = "".join(ch for ch in str(info.get("minor", "0")) if ch.isdigit()) or "0"
    return int(info.get("major", 0)), int(minor)


async def check_cluster(api: KubeApi) -> Check:
    try:
        info = await api.get_json("/version")
    except KubeError as e:
        return failed("cluster", f"{e}; check KUBECONFIG and that the cluster is up")
    version = _version(info)
    shown = f"{version[0]}.{version[1]}"
    if not MIN_VERSION <= version <= MAX_VERSION:
        lo, hi = (".".join(map(str, v)) for v in (MIN_VERSION, MAX_VERSION))
        return failed("cluster", f"Kubernetes {shown} is not supported; use {lo} to {hi}")
    return passed("cluster", f"Kubernetes {info.get('gitVersion', shown)} at {api.server}")


async def check_storage(api: KubeApi, cfg: ClusterConfig) -> Check:
    name = cfg.storage.class_name
    sc = await api.get("StorageClass", name)
    if sc is None:
        return failed(
            "storage class",
            f"storage class {name!r} does not exist; install an RWX provisioner "
            "(SeaweedFS CSI, NFS, CephFS) or set storage.class in tkhub-cluster.yaml",
        )
    provisioner = sc.get("provisioner", "")
    if provisioner in RWX_PROVISIONERS or cfg.storage.assume_rwx:
        return passed("storage class", f"{name} ({provisioner}) gives ReadWriteMany volumes")
    return failed(
        "storage class",
        f"{name} uses {provisioner}, not known to give ReadWriteMany volumes; use an RWX "
        "class, or set storage.assume_rwx: true if it does (verify will prove it)",
    )


async def check_gpu_nodes(api: KubeApi) -> Check:
    nodes = await api.list("Node")
    gpu = [
        n["metadata"]["name"]
        for n in nodes
        if any(k.startswith("nvidia.com/") for k in (n.get("status") or {}).get("allocatable", {}))
    ]
    if not gpu:
        return Check(
            "GPU nodes",
            "warn",
            "no node advertises nvidia.com/gpu: servers will be CPU only; install the "
            "NVIDIA GPU Operator on the GPU nodes",
        )
    return passed("GPU nodes", ", ".join(sorted(gpu)))


async def check_oidc_secret(api: KubeApi, cfg: ClusterConfig) -> Check:
    ref, ns = cfg.keycloak.client_secret, cfg.namespace
    fix = (
        f"kubectl create namespace {ns}; kubectl -n {ns} create secret generic {ref.name} "
        f"--from-literal={ref.key}=<the Keycloak client secret>"
    )
    try:
        secret = await api.get("Secret", ref.name, ns)
    except KubeError as e:
        return failed("OIDC client secret", f"{e}; {fix}")
    if secret is None or not (secret.get("data") or {}).get(ref.key):
        return failed(
            "OIDC client secret", f"secret {ns}/{ref.name} key {ref.key!r} missing; {fix}"
        )
    return passed("OIDC client secret", f"{ns}/{ref.name} has {ref.key}")


async def check_service_secrets(api: KubeApi, cfg: ClusterConfig) -> list[Check]:
    """Each secret a platform service names exists (its value is never read here)."""
    checks = []
    for service in cfg.services:
        for variable, ref in service.secrets.items():
            name = f"service {service.name}: {variable}"
            secret = await api.get("Secret", ref.name, cfg.namespace)
            if secret is None or ref.key not in (secret.get("data") or {}):
                checks.append(failed(name, (
                    f"secret {cfg.namespace}/{ref.name} key {ref.key!r} missing; servers "
                    f"would start without {variable}: kubectl -n {cfg.namespace} create "
                    f"secret generic {ref.name} --from-file={ref.key}=<file>"
                )))  # fmt: skip
            else:
                checks.append(passed(name, f"{cfg.namespace}/{ref.name} has {ref.key}"))
    return checks


async def _registry_auth(api: KubeApi, cfg: ClusterConfig, reg: Registry) -> Credentials | None:
    if reg.credentials is None:
        return None
    secret = await api.get("Secret", reg.credentials.name, cfg.namespace)
    value = ((secret or {}).get("data") or {}).get(reg.credentials.key)
    if not value:
        raise KubeError(
            f"secret {cfg.namespace}/{reg.credentials.name} key {reg.credentials.key!r} missing"
        )
    user, _, password = base64.b64decode(value).decode().partition(":")
    return Credentials(user, password)


async def check_registry(api: KubeApi, cfg: ClusterConfig, reg: Registry) -> Check:
    name = f"registry {reg.name}"
    try:
        auth = await _registry_auth(api, cfg, reg)
    except KubeError as e:
        return failed(name, f"{e}; create it with the registry's user:password")
    url = reg.url.rstrip("/") + "/v2/"
    try:
        # the catalog's registry auth: basic, or a bearer token from the registry's realm
        async with httpx.AsyncClient(timeout=5, auth=RegistryAuth(auth)) as http:
            response = await http.get(url)
    except httpx.HTTPError as e:
        return failed(name, f"{url} did not answer ({type(e).__name__}); check registries[].url")
    if response.status_code in (401, 403):
        return failed(name, f"{url} refused the credentials ({response.status_code})")
    if response.status_code != 200:
        return failed(name, f"{url} answered {response.status_code}; is it an OCI registry?")
    return passed(name, f"{url} answers" + (" with credentials" if auth else ""))


KUEUE_LOCAL_QUEUES = "/apis/kueue.x-k8s.io/v1beta2/namespaces/{ns}/localqueues/{name}"


async def check_kueue_queue(api: KubeApi, cfg: ClusterConfig) -> Check | None:
    """The LocalQueue jobs are handed to, when one is named: a Job naming a queue that
    does not exist is never admitted, and would wait without a word."""
    queue = cfg.jobs.kueue_queue
    if not queue:
        return None
    name = "jobs: Kueue queue"
    path = KUEUE_LOCAL_QUEUES.format(ns=cfg.namespace, name=queue)
    try:
        await api.get_json(path)
    except KubeError as e:
        if e.status != 404:
            raise
        return failed(name, (
            f"LocalQueue {cfg.namespace}/{queue} does not exist (or Kueue is not "
            "installed); create it, or remove jobs.kueue_queue to queue jobs in tkhub"
        ))  # fmt: skip
    return passed(name, f"LocalQueue {cfg.namespace}/{queue}")


def check_helm(which: Callable[[str], str | None] = shutil.which) -> Check:
    path = which("helm")
    if path is None:
        return failed(
            "helm", "helm is not on PATH; install it: https://helm.sh/docs/intro/install/"
        )
    return passed("helm", path)


async def preflight(api: KubeApi, cfg: ClusterConfig) -> list[Check]:
    """All checks, in order; later ones are skipped when the cluster cannot be reached."""
    checks = [await check_cluster(api)]
    if checks[0].failed:
        return [*checks, check_helm()]
    try:
        checks += [
            await check_storage(api, cfg),
            await check_gpu_nodes(api),
            await check_oidc_secret(api, cfg),
        ]
        checks += [await check_registry(api, cfg, reg) for reg in cfg.registries]
        checks += await check_service_secrets(api, cfg)
        kueue = await check_kueue_queue(api, cfg)
        checks += [kueue] if kueue else []
    except KubeError as e:
        checks.append(failed("cluster access", f"{e}; check the kubeconfig user's permissions"))
    checks.append(check_helm())
    return checks
