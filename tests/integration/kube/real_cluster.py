"""The real control plane for tests: started once per test session by ``cluster/cluster.py``.

``RealCluster`` talks to kube-apiserver as its admin (client certificate) through
httpx for reads and through the cluster's own kubectl for writes, and can stop and
start one component for the fault tests.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[3]
CLUSTER_SCRIPT = REPO / "cluster" / "cluster.py"
GPU = "nvidia.com/gpu"
GPU_TOLERATION = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}


@dataclass
class RealCluster:
    root: Path

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def hub_kubeconfig(self) -> Path:
        return self.root / "hub.kubeconfig"

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.root / "state.json").read_text()))

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.state['ports']['kube-apiserver']}"

    def http(self) -> httpx.Client:
        pki = self.root / "pki"
        tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        tls.load_cert_chain(str(pki / "admin-client.crt"), str(pki / "admin-client.key"))
        return httpx.Client(base_url=self.url, verify=tls, timeout=10)

    def get(self, path: str, **params: str) -> dict[str, Any] | None:
        with self.http() as http:
            r = http.get(path, params=params)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return dict(r.json())

    def items(self, path: str, **params: str) -> list[dict[str, Any]]:
        found = self.get(path, **params)
        return list((found or {}).get("items") or [])

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(f"/api/v1/namespaces/{namespace}/pods/{name}")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        binary = Path(self.state["bins"]["kubernetes"]) / "kubectl"
        proc = subprocess.run(
            [str(binary), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            input=input, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects))

    def component(self, action: str, name: str) -> None:
        script = [sys.executable, str(CLUSTER_SCRIPT), action, name, f"--dir={self.root}"]
        subprocess.run(script, check=True, timeout=120)

    @contextmanager
    def namespace(self, prefix: str = "t") -> Iterator[str]:
        """A fresh namespace, deleted (and waited for, so its pods free their
        GPUs) afterwards."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        try:
            yield name
        finally:
            self.kubectl("delete", "namespace", name, "--wait=true", "--timeout=90s", check=False)

    def wait_for(self, what: str, predicate: Any, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def start_cluster(root: Path) -> RealCluster:
    """``cluster.py up`` into ``root``; a failure (Go missing, a build or a component
    that does not start) fails the tests with the script's own message."""
    proc = subprocess.run(
        [sys.executable, str(CLUSTER_SCRIPT), "up", "--kueue", f"--dir={root}"],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(
            f"the test cluster did not start (cluster/cluster.py up):\n{proc.stderr[-4000:]}"
        )
    return RealCluster(root)


def stop_cluster(cluster: RealCluster) -> None:
    subprocess.run(
        [sys.executable, str(CLUSTER_SCRIPT), "down", f"--dir={cluster.root}"],
        check=False, timeout=120,
    )  # fmt: skip


def pod(name: str, *, limits: dict[str, str] | None = None, node: str | None = None,
        image: str = "registry.invalid/pause:1", gpu: bool = False,
        **spec: Any) -> dict[str, Any]:  # fmt: skip
    """A pod the real scheduler places: its node by ``kubernetes.io/hostname``."""
    body: dict[str, Any] = {
        "containers": [
            {"name": "main", "image": image, "resources": {"limits": limits or {}}}
        ],  # fmt: skip
        "restartPolicy": "Never",
        **spec,
    }
    if node:
        body["nodeSelector"] = {"kubernetes.io/hostname": node}
    if gpu:
        body["tolerations"] = [GPU_TOLERATION]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def scheduled_node(cluster: RealCluster, namespace: str, name: str) -> str | None:
    found = cluster.pod(namespace, name)
    return (found or {}).get("spec", {}).get("nodeName")


def unschedulable_message(cluster: RealCluster, namespace: str, name: str) -> str:
    """The PodScheduled=False message kube-scheduler wrote, '' while there is none."""
    found = cluster.pod(namespace, name) or {}
    for condition in (found.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("message", ""))
    return ""


def settle(cluster: RealCluster, namespace: str, name: str, timeout: float = 30) -> str:
    """Wait until the scheduler decided: the node's name, or 'unschedulable'."""

    def decided() -> str:
        if node := scheduled_node(cluster, namespace, name):
            return node
        return "unschedulable" if unschedulable_message(cluster, namespace, name) else ""

    return str(cluster.wait_for(f"the scheduler to decide on {name}", decided, timeout))
