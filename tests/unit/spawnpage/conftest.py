"""Fixtures for the spawn page unit tests.

- ``entries``: catalog entries as the catalog returns them: a default, a GPU-required
  one with limits and many packages, a CPU-only one, a hidden one, one for group ``ml``.
- ``local_inv``: this machine with two H100s, GPU 1 held by another server.
- ``cluster_inv``: three nodes: H100s all in use, A100s with one used, a cordoned A100.
- ``many``: (entries, inventory) with 200 environments and 50 GPU nodes.
- ``parse``: parses rendered HTML with the standard library parser (BeautifulSoup).

Helpers (``entry``, ``User``, ``many_entries``, ``many_nodes``) are in ``form_data.py``.
"""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from form_data import H100, entry, many_entries, many_nodes

from tkhub.catalog.schemas import ImagePublic
from tkhub.gpu.model import GpuDevice, GpuNode, GpuPool, Inventory
from tkhub.local.inventory import local_node


@pytest.fixture
def entries() -> list[ImagePublic]:
    return [
        entry("base", display_name="Base Python", description="numpy and friends", default=True),
        entry(
            "torch",
            "required",
            display_name="PyTorch <CUDA>",
            description="Training on GPUs",
            packages=["torch", "cuda", "numpy", "pandas", "jupyterlab", "triton", "xformers"],
            resources={"cpu_limit": "8", "mem_limit": "32Gi", "cpu_guarantee": "6"},
        ),
        entry("plain", "none", display_name="Plain CPU"),
        entry("secret", hidden=True),
        entry("team", allowed_groups=["ml"], display_name="Team only"),
    ]


@pytest.fixture
def local_inv() -> Inventory:
    devices = [
        GpuDevice("0", "GPU-0", H100, 81559),
        GpuDevice("1", "GPU-1", H100, 81559, holders=("bob/",)),
    ]
    return Inventory(mode="local", nodes=(local_node(devices),))


@pytest.fixture
def cluster_inv() -> Inventory:
    b = GpuNode("node-b", (GpuPool("NVIDIA-H100", total=2, allocated=2),))
    c = GpuNode("node-c", (GpuPool("NVIDIA-A100", total=4, allocated=1),))
    d = GpuNode("node-d", (GpuPool("NVIDIA-A100", total=1),), schedulable=False, reason="cordoned")
    return Inventory(mode="kubernetes", nodes=(b, c, d))


@pytest.fixture
def many() -> tuple[list[ImagePublic], Inventory]:
    return many_entries(), many_nodes()


@pytest.fixture
def parse():
    def _parse(html: str) -> BeautifulSoup:
        return BeautifulSoup(html, "html.parser")

    return _parse
