"""The hub the browser tests run against: its config, handle and sign-in helper."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
VENV_PYTHON = sys.executable


HUB_CONFIG = """
import sys
sys.path.insert(0, {here!r})

# The one fake: two GPUs at the hardware boundary (NVML), as the GPU tests do,
# so placements by device show on this GPU-less machine. Everything above it is real.
from tkhub.gpu import nvml
_GPUS = [
    nvml.NvmlDevice(str(i), f"GPU-{{i}}-test", "NVIDIA RTX 6000 Ada Generation", 49140, 0, 0)
    for i in range(2)
]
nvml.read_devices = lambda: list(_GPUS)

{base}c.Authenticator.admin_users = {{"admin"}}
c.Authenticator.allowed_users = {{"alice"}}
from tkhub.spawnpage.render import use_hub_templates
use_hub_templates(c)
c.JupyterHub.allow_named_servers = True
c.JupyterHub.services = [{{
    "name": "catalog",
    "url": "http://127.0.0.1:{catalog_port}",
    "command": [{python!r}, "-m", "tkhub.catalog"],
    "environment": {{"TKHUB_DATA_DIR": {data!r}, "TKHUB_CATALOG_PORT": "{catalog_port}"}},
    "api_token": {service!r},
}}]
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", "access:services"]}},
]
c.JupyterHub.api_tokens = {{{admin_token!r}: "admin"}}
c.JupyterHub.spawner_class = "tkhub-local"
c.LocalSpawner.catalog_url = "http://127.0.0.1:{catalog_port}"
c.LocalSpawner.catalog_token = {service!r}
c.LocalSpawner.data_dir = {data!r}
c.LocalSpawner.account_prefix = {account_prefix!r}
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.Spawner.default_url = "/lab/tree/notebooks"
"""


@dataclass
class PageHub:
    url: str  # the proxy: what the browser opens
    api_url: str  # http://127.0.0.1:HUB_PORT/hub/api
    catalog_url: str
    admin_token: str
    data_dir: Path
    log: Path

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"token {self.admin_token}"}
        return httpx.request(method, self.api_url + path, headers=headers, timeout=30, **kwargs)

    def catalog(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"token {self.admin_token}"}
        url = self.catalog_url + "/api/v1" + path
        return httpx.request(method, url, headers=headers, timeout=30, **kwargs)

    def stop_servers(self, user: str) -> None:
        info = self.api("GET", f"/users/{user}")
        if info.status_code != 200:
            return
        for name in info.json().get("servers", {}):
            path = f"/users/{user}/servers/{name}" if name else f"/users/{user}/server"
            self.api("DELETE", path)
        for _ in range(300):
            if not self.api("GET", f"/users/{user}").json().get("servers"):
                return
            time.sleep(0.2)


ENTRIES = [
    {
        "name": "data-science",
        "display_name": "Data science",
        "description": "pandas, scikit-learn and plotting on CPU or any GPU.",
        "gpu": "optional",
        "packages": ["pandas", "scikit-learn", "matplotlib", "polars"],
        "resources": {"cpu_limit": "4", "mem_limit": "8Gi"},
    },
    {
        "name": "pytorch",
        "display_name": "PyTorch",
        "description": "PyTorch with CUDA for training and fine-tuning.",
        "gpu": "optional",
        "packages": ["torch", "torchvision", "transformers", "accelerate", "datasets"],
        "resources": {"cpu_limit": "8", "mem_limit": "32Gi"},
    },
    {
        "name": "teaching",
        "display_name": "Teaching",
        "description": "A small CPU environment for courses.",
        "gpu": "none",
        "packages": ["numpy", "ipywidgets"],
    },
    {
        "name": "retired",
        "display_name": "Retired",
        "description": "Hidden from everyone.",
        "hidden": True,
    },
    {
        "name": "lab-only",
        "display_name": "Lab group only",
        "description": "Only for the lab group.",
        "allowed_groups": ["lab"],
    },
]


def add_entries(hub: PageHub) -> None:
    for body in ENTRIES:
        body = {"kind": "local", "python": VENV_PYTHON, **body}
        response = hub.catalog("POST", "/images", json=body)
        assert response.status_code in (200, 201), response.text


async def sign_in(page: Any, hub: PageHub, user: str = "alice", next_url: str = "") -> None:
    target = hub.url + "/hub/login" + (f"?next={next_url}" if next_url else "")
    await page.goto(target)
    await page.fill("#username_input", user)
    await page.fill("#password_input", "any")
    await page.click("#login_submit")
