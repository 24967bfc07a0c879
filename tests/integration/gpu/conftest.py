"""Fixtures for the GPU end-to-end test (a real hub with tkhub's local mode).

- ``nvml_gpus`` (module): this machine's GPUs through the real NVML; skips the
  module where there is no NVIDIA driver or no GPU.
- ``gpu_hub`` (module): JupyterHub configured by ``tkhub.local.hub_config.configure`` (the
  LocalSpawner and the catalog service), on free 127.0.0.1 ports, with a data
  directory under /tmp, a dummy authenticator and an admin API token. Users the
  test spawns for are created through the REST API and their system accounts (if
  the spawner made any) removed afterwards. See ``GpuHub``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubproc import free_port, remove_test_account, terminate, wait_for

from tkhub.gpu import nvml

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def nvml_gpus() -> list[nvml.NvmlDevice]:
    try:
        devices = nvml.read_devices()
    except nvml.NvmlUnavailable as exc:
        pytest.skip(f"needs an NVIDIA GPU: {exc}")
    if not devices:
        pytest.skip("needs an NVIDIA GPU: NVML lists none")
    return devices


HUB_CONFIG = """
from tkhub.settings import load_settings
from tkhub.local.hub_config import configure

c = get_config()  # noqa
configure(c, load_settings())
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"tkgpuadmin"}}
c.JupyterHub.api_tokens = {{{token!r}: "tkgpuadmin"}}
c.JupyterHub.cleanup_servers = True
"""


@dataclass
class GpuHub:
    url: str  # the proxy: http://127.0.0.1:PORT
    token: str  # admin API token
    data_dir: Path
    log: Path
    users: list[str] = field(default_factory=list)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kw)

    def new_user(self) -> str:
        name = f"tkgpu{secrets.token_hex(3)}"
        assert self.api("POST", f"/users/{name}").status_code == 201
        self.users.append(name)
        return name

    def spawn(self, user: str, options: dict[str, list[str]]) -> httpx.Response:
        return self.api("POST", f"/users/{user}/server", json=options)

    def wait_ready(self, user: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{user}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return server
            if not server:
                raise AssertionError(f"{user}'s server stopped:\n{self.tail()}")
            time.sleep(0.5)
        raise AssertionError(f"{user}'s server not ready in {timeout} s:\n{self.tail()}")

    def stop(self, user: str, timeout: float = 60) -> None:
        self.api("DELETE", f"/users/{user}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.api("GET", f"/users/{user}").json().get("servers"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{user}'s server did not stop:\n{self.tail()}")

    def ledger(self) -> dict[str, list[str]]:
        path = self.data_dir / "state" / "gpu-ledger.json"
        return json.loads(path.read_text()).get("devices", {}) if path.exists() else {}

    def held_by(self, user: str) -> list[str]:
        return [
            u for u, keys in self.ledger().items() if any(k.startswith(f"{user}/") for k in keys)
        ]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def gpu_hub(nvml_gpus: list[nvml.NvmlDevice]) -> Iterator[GpuHub]:
    with running_hub() as hub:
        yield hub


@contextmanager
def running_hub() -> Iterator[GpuHub]:
    """Start the hub and stop it (and everything it spawned) afterwards; bench uses it too."""
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-gpu-"))
    os.chmod(root, 0o755)
    data_dir = root / "data"
    data_dir.mkdir(mode=0o755)
    token = secrets.token_hex(16)
    (root / "jupyterhub_config.py").write_text(HUB_CONFIG.format(token=token))
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}:{REPO / 'node_modules' / '.bin'}:{os.environ['PATH']}",
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16),
        "TKHUB_DATA_DIR": str(data_dir),
        "TKHUB_IP": "127.0.0.1",
        "TKHUB_PORT": str(port),
        "TKHUB_HUB_API_PORT": str(free_port()),
        "TKHUB_PROXY_API_PORT": str(free_port()),
        "TKHUB_CATALOG_PORT": str(free_port()),
    }
    log = root / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    hub = GpuHub(f"http://127.0.0.1:{port}", token, data_dir, log)
    try:
        wait_for(f"{hub.url}/hub/api", proc, log)
        yield hub
    finally:
        for user in hub.users:
            try:
                hub.api("DELETE", f"/users/{user}/server")
            except httpx.HTTPError:
                pass
        terminate(proc, timeout=30)
        for user in hub.users:
            remove_test_account(user, data_dir)
        shutil.rmtree(root, ignore_errors=True)
