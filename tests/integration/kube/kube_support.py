"""Helpers for the kubernetes-mode tests and bench: the emulated cluster, a real hub."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from hubproc import free_port, hub_base_config, terminate, wait_for
from kube_cluster import (
    Cluster,
    Image,
    make_root,
    remove_root,
)
from kube_emulator import ADMIN_TOKEN, Emulator

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
NAMESPACE = "tkhub"
LAB_IMAGE = "registry.example.org/thinkube/tk-jupyter:1.0"
# kwok (cluster/kwok-stages.yaml) and the emulator both fail to pull from this host.
BROKEN_IMAGE = "missing.invalid/thinkube/does-not-exist:1.0"
HUB_IMAGE = "registry.example.org/thinkube/tkhub-hub:1.0"  # tkhub: examples sync, delivery
BUSYBOX = "busybox:1.36"
CUDA = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"


@dataclass
class Kube:
    emulator: Emulator
    cluster: Cluster
    root: Path
    kubeconfig: Path

    @property
    def url(self) -> str:
        return self.emulator.url

    def put(self, plural: str, obj: dict) -> dict:
        return self.emulator.call(self.emulator.store.put(plural, obj))[0]

    def get(self, plural: str, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self.emulator.store.get(plural, namespace, name)


def write_kubeconfig(path: Path, server: str) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulated", "cluster": {"server": server}}],
                "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
                "contexts": [
                    {"name": "emulated", "context": {"cluster": "emulated", "user": "admin"}}
                ],
                "current-context": "emulated",
            }
        )
    )
    path.chmod(0o600)


def images(root: Path) -> dict[str, Image]:
    """What each image reference runs. The lab image is this virtualenv's Jupyter; its
    config lets the server run as the (root) test user, as the real image's user runs it."""
    config = root / "image-jupyter-config"
    config.mkdir()
    (config / "jupyter_server_config.py").write_text("c.ServerApp.allow_root = True\n")
    lab_env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "JUPYTER_CONFIG_DIR": str(config)}
    return {
        LAB_IMAGE: Image(env=lab_env),
        HUB_IMAGE: Image(env=lab_env),
        BUSYBOX: Image(entrypoint=["sh"]),
        CUDA: Image(entrypoint=["sh"]),
    }


REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}/storage
http:
  addr: 127.0.0.1:{port}
auth:
  htpasswd:
    realm: tkhub-test
    path: {root}/htpasswd
"""


@dataclass
class Hub:
    url: str
    api_url: str
    catalog_url: str
    service_token: str
    root: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return (self.root / "hub.log").read_text(errors="replace")


HUB_CONFIG = """
{base}c.Authenticator.admin_users = {{"admin"}}
c.Authenticator.allowed_users = {{"alice", "bob", "carol"}}
c.JupyterHub.api_tokens = {tokens!r}
c.JupyterHub.services = [{{
    "name": "catalog",
    "url": "http://127.0.0.1:{catalog_port}",
    "api_token": {service!r},
    "command": [{python!r}, "-m", "tkhub.catalog"],
    "environment": {{"TKHUB_CATALOG_PORT": "{catalog_port}", "TKHUB_DATA_DIR": {data!r}}},
}}]
c.JupyterHub.custom_scopes = {{
    "custom:tkhub-catalog:admin": {{"description": "write the tkhub image catalog"}},
}}
c.JupyterHub.spawner_class = "tkhub.kube.spawner.TkKubeSpawner"
c.TkKubeSpawner.catalog_url = "http://127.0.0.1:{catalog_port}"
c.TkKubeSpawner.catalog_token = {service!r}
c.KubeSpawner.namespace = {namespace!r}
c.KubeSpawner.k8s_api_host = {kube_url!r}
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.image_pull_policy = "IfNotPresent"
c.Spawner.http_timeout = 60
from tkhub.kube.hub_config import configure_user_files
from tkhub.kube.names import Names
configure_user_files(c, Names({namespace!r}))  # as the chart's hub does
{extra}
"""


def start_hub(
    kube: Any, extra: str = "", namespace: str = NAMESPACE
) -> tuple[Hub, subprocess.Popen[bytes]]:
    """A hub whose spawner talks to ``kube`` (the emulator or a ``RealCluster``)."""
    root = make_root()
    port, hub_port, proxy_api_port, catalog_port = (free_port() for _ in range(4))
    tokens = {name: secrets.token_hex(16) for name in ("admin", "alice", "bob", "carol")}
    service = secrets.token_hex(16)
    (root / "data").mkdir()
    (root / "jupyterhub_config.py").write_text(
        HUB_CONFIG.format(
            base=hub_base_config(port, hub_port, proxy_api_port),
            service=service, tokens={t: n for n, t in tokens.items()},
            catalog_port=catalog_port, python=sys.executable, data=str(root / "data"),
            namespace=namespace, kube_url=kube.url, extra=extra,
        )
    )  # fmt: skip
    env = {
        **os.environ,
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16),
        "KUBECONFIG": str(kube.kubeconfig),
    }
    log = open(root / "hub.log", "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    hub = Hub(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{hub_port}/hub/api",
        f"http://127.0.0.1:{catalog_port}",
        service,
        root,
        tokens,
    )
    wait_for(hub.api_url, proc, root / "hub.log")
    wait_for(f"{hub.catalog_url}/health", proc, root / "hub.log")
    return hub, proc


def stop_hub(hub: Hub, proc: subprocess.Popen[bytes]) -> None:
    terminate(proc)
    remove_root(hub.root)


def seed_catalog(hub: Hub, more: tuple[dict[str, Any], ...] = ()) -> None:
    admin = {"Authorization": f"token {hub.tokens['admin']}"}
    entries = [
        {"name": "lab", "display_name": "Lab", "image": LAB_IMAGE, "gpu": "optional",
         "resources": {"cpu_limit": "2", "mem_limit": "4Gi"}},
        {"name": "broken", "display_name": "Broken", "image": BROKEN_IMAGE, "gpu": "none"},
        {"name": "gpu-lab", "display_name": "GPU Lab", "image": LAB_IMAGE, "gpu": "required"},
    ]  # fmt: skip
    for entry in [*entries, *more]:
        r = httpx.post(f"{hub.catalog_url}/api/v1/images", json=entry, headers=admin, timeout=10)
        assert r.status_code in (200, 201), r.text
