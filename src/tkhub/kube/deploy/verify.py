"""``tkhub deploy verify``: prove the deployment works, from the names that created it.

Hub and proxy ready; every PVC ``render`` makes is Bound; the catalog answers and
lists an image; a file written to the notebooks volume on one node is read back on
a *different* node; a GPU pod sees a GPU; the hub login page answers. In-cluster
HTTP goes through the API server's Service proxy, so no ingress or DNS is needed.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from tkhub.kube.deploy.checks import Check, failed, passed
from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.deploy.kubeapi import KubeApi, KubeError
from tkhub.kube.deploy.manifests import examples_sync_job, render_manifests
from tkhub.kube.names import SHARED_VOLUMES
from tkhub.kube.podstatus import PULL_FAILURES

PROBE_MOUNT = "/mnt/tkhub-verify"
POD_TIMEOUT = 180.0


async def check_deployments(api: KubeApi, cfg: ClusterConfig) -> list[Check]:
    names = cfg.names
    checks = []
    for name in (names.hub_deployment, names.proxy_deployment, names.catalog):
        dep = await api.get("Deployment", name, names.namespace)
        ready = ((dep or {}).get("status") or {}).get("readyReplicas") or 0
        if dep is None:
            checks.append(failed(f"{name} ready", f"deployment {names.namespace}/{name} missing"))
        elif ready < 1:
            checks.append(failed(f"{name} ready", "no ready replica; kubectl describe it"))
        else:
            checks.append(passed(f"{name} ready", f"{ready} ready"))
    return checks


async def check_pvcs(api: KubeApi, cfg: ClusterConfig) -> list[Check]:
    """Every PVC that ``render`` creates, by the same builder: never a made-up name."""
    checks = []
    sc = await api.get("StorageClass", cfg.storage.class_name) or {}
    waits = sc.get("volumeBindingMode") == "WaitForFirstConsumer"
    for obj in render_manifests(cfg):
        if obj["kind"] != "PersistentVolumeClaim":
            continue
        name = obj["metadata"]["name"]
        pvc = await api.get("PersistentVolumeClaim", name, cfg.namespace)
        phase = ((pvc or {}).get("status") or {}).get("phase", "missing" if pvc is None else "")
        if phase == "Bound":
            checks.append(passed(f"pvc {name}", "Bound"))
        elif pvc is not None and waits:
            checks.append(Check(f"pvc {name}", "warn", "Pending until the first pod uses it"))
        else:
            checks.append(failed(f"pvc {name}", f"{phase or 'Pending'}; check the storage class"))
    return checks


async def check_catalog(api: KubeApi, cfg: ClusterConfig) -> Check:
    # /health, not the image list: the API server's service proxy drops the
    # caller's Authorization header, so no catalog token reaches the service.
    names = cfg.names
    response = await api.service_proxy(
        names.namespace, names.catalog, "http", "services/catalog/health"
    )
    if response.status_code != 200:
        return failed("catalog", f"answered {response.status_code}: {response.text[:200]}")
    images = response.json().get("images")
    if not images:
        return failed("catalog", "answers but lists no image; push or register one")
    return passed("catalog", f"answers; {images} image(s) on the spawn page")


LOGIN_WAIT_SECONDS = 20.0  # a proxy is Ready before the hub has added its route (404)


async def check_login_page(api: KubeApi, cfg: ClusterConfig) -> Check:
    names = cfg.names
    deadline = time.monotonic() + LOGIN_WAIT_SECONDS
    while True:
        response = await api.service_proxy(
            names.namespace, names.proxy_public_service, "http", "hub/login"
        )
        if response.status_code == 200:
            return passed("login page", "/hub/login answers 200")
        if time.monotonic() > deadline:
            return failed("login page", f"/hub/login answered {response.status_code}")
        await asyncio.sleep(1.0)


def probe_pod(
    cfg: ClusterConfig,
    name: str,
    node: str,
    command: str,
    *,
    image: str | None = None,
    volume: str = "notebooks",
) -> dict[str, Any]:
    """A one-shot pod pinned to ``node`` (any node when empty) that mounts a shared volume."""
    names = cfg.names
    notebooks = next(v for v in SHARED_VOLUMES if v.key == volume)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": names.namespace, "labels": names.labels("verify")},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": node} if node else {},
            "tolerations": [{"operator": "Exists"}],  # any node, GPU-tainted or not
            "containers": [
                {
                    "name": "probe",
                    "image": image or cfg.verify_image,
                    "command": ["sh", "-c", command],
                    "volumeMounts": [{"name": "notebooks", "mountPath": PROBE_MOUNT}],
                }
            ],
            "volumes": [
                {
                    "name": "notebooks",
                    "persistentVolumeClaim": {"claimName": names.pvc(notebooks.key)},
                }
            ],
        },
    }


async def run_pod(api: KubeApi, pod: dict[str, Any], timeout: float = POD_TIMEOUT) -> str:
    """Create the pod, wait for it to finish, return its log; always delete it."""
    meta = pod["metadata"]
    await api.delete("Pod", meta["name"], meta["namespace"])
    await _wait_gone(api, meta["name"], meta["namespace"])
    await api.create(pod)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = await api.get("Pod", meta["name"], meta["namespace"]) or {}
            status = current.get("status") or {}
            for cs in status.get("containerStatuses") or []:
                reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
                if reason in PULL_FAILURES:
                    raise KubeError(f"image {cs.get('image')} cannot be pulled ({reason})")
            if status.get("phase") in ("Succeeded", "Failed"):
                log = await api.pod_log(meta["name"], meta["namespace"])
                if status["phase"] == "Failed":
                    raise KubeError(f"pod {meta['name']} failed: {log.strip()[-200:]}")
                return log
            await asyncio.sleep(0.5)
        raise KubeError(f"pod {meta['name']} did not finish in {timeout:g} s")
    finally:
        await api.delete("Pod", meta["name"], meta["namespace"])


async def _wait_gone(api: KubeApi, name: str, namespace: str) -> None:
    for _ in range(120):
        if await api.get("Pod", name, namespace) is None:
            return
        await asyncio.sleep(0.5)


def _ready_nodes(nodes: list[dict]) -> list[dict]:
    def ready(n: dict) -> bool:
        conditions = (n.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    return [n for n in nodes if ready(n) and not (n.get("spec") or {}).get("unschedulable")]


async def check_cross_node(api: KubeApi, cfg: ClusterConfig) -> Check:
    """Write on one node, read on another: RWX storage that does not share fails here."""
    name = "notebooks shared across nodes"
    nodes = [n["metadata"]["name"] for n in _ready_nodes(await api.list("Node"))]
    if len(nodes) < 2:
        return Check(name, "skip", f"needs two ready nodes, the cluster has {len(nodes)}")
    token = secrets.token_hex(8)  # the content; the file name differs, so an error
    path = f"{PROBE_MOUNT}/.tkhub-verify-{secrets.token_hex(8)}"  # naming it won't match
    names = cfg.names
    writer, reader = nodes[0], nodes[1]
    try:
        await run_pod(
            api, probe_pod(cfg, names.verify_writer_pod, writer, f"echo {token} > {path}")
        )
        log = await run_pod(
            api, probe_pod(cfg, names.verify_reader_pod, reader, f"cat {path}; rm -f {path}")
        )
    except KubeError as e:
        return failed(name, str(e))
    if token not in log:
        return failed(
            name,
            f"a file written on {writer} is not visible on {reader}: the storage class "
            f"{cfg.storage.class_name} does not share between nodes",
        )
    return passed(name, f"written on {writer}, read back on {reader}")


async def check_gpu(api: KubeApi, cfg: ClusterConfig) -> Check:
    nodes = _ready_nodes(await api.list("Node"))
    gpu = [
        n["metadata"]["name"]
        for n in nodes
        if int((n.get("status") or {}).get("allocatable", {}).get("nvidia.com/gpu", "0") or 0) > 0
    ]
    if not gpu:
        return Check("GPU visible in a pod", "skip", "no ready node advertises nvidia.com/gpu")
    pod = probe_pod(
        cfg, cfg.names.verify_gpu_pod, gpu[0], "nvidia-smi -L", image=cfg.gpu.verify_image
    )
    container = pod["spec"]["containers"][0]
    container["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    try:
        log = await run_pod(api, pod)
    except KubeError as e:
        return failed("GPU visible in a pod", str(e))
    lines = [line for line in log.splitlines() if line.startswith("GPU ")]
    if not lines:
        return failed("GPU visible in a pod", f"nvidia-smi -L on {gpu[0]} listed no GPU")
    return passed("GPU visible in a pod", f"{gpu[0]}: {lines[0]}")


JOB_TIMEOUT = 300.0


async def run_job(api: KubeApi, job: dict[str, Any], timeout: float = JOB_TIMEOUT) -> str:
    """Create the Job anew and wait for it: "" when it completed, else why not."""
    meta = job["metadata"]
    await api.delete("Job", meta["name"], meta["namespace"])
    await api.create(job)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = await api.get("Job", meta["name"], meta["namespace"]) or {}
        for condition in (current.get("status") or {}).get("conditions") or []:
            if condition.get("status") == "True" and condition.get("type") == "Complete":
                return ""
            if condition.get("status") == "True" and condition.get("type") == "Failed":
                return f"job {meta['name']} failed; kubectl logs job/{meta['name']}"
        await asyncio.sleep(0.5)
    return f"job {meta['name']} did not finish in {timeout:g} s"


async def check_examples(api: KubeApi, cfg: ClusterConfig) -> Check:
    """Run the sync as the CronJob would, then read the examples volume the servers
    mount: the served copy is there, and the sync says ok."""
    name = "examples synced"
    names = cfg.names
    problem = await run_job(api, examples_sync_job(cfg, names.verify_examples_job))
    if problem:
        return failed(name, problem)
    command = f"cat {PROBE_MOUNT}/sync.json; echo; ls {PROBE_MOUNT}/current"
    try:
        log = await run_pod(
            api, probe_pod(cfg, names.verify_examples_pod, "", command, volume="examples")
        )
    except KubeError as e:
        return failed(name, str(e))
    if '"ok": true' not in log or "common" not in log.split():
        return failed(name, f"the examples volume holds no synced copy: {log.strip()[-200:]}")
    return passed(name, "the sync job ran; the servers' examples volume holds the examples")


async def verify(api: KubeApi, cfg: ClusterConfig) -> list[Check]:
    """Every check; one that cannot run is a failure with its reason, never a crash."""
    checks: list[Check] = []
    steps: list[tuple[str, Any]] = [
        ("deployments", check_deployments),
        ("volumes", check_pvcs),
        ("catalog", check_catalog),
        ("examples synced", check_examples),
        ("notebooks shared across nodes", check_cross_node),
        ("GPU visible in a pod", check_gpu),
        ("login page", check_login_page),
    ]
    for label, step in steps:
        try:
            result = await step(api, cfg)
        except KubeError as e:
            result = failed(label, str(e))
        checks += result if isinstance(result, list) else [result]
    return checks
