"""Fixtures for the spawn page unit tests.

- ``entries``: catalog entries as the catalog returns them: a default, a GPU-required
  one with limits and many packages, a CPU-only one, a hidden one, one for group ``ml``.
- ``local_inv``: this machine with two H100s, GPU 1 held by another server.
- ``cluster_inv``: three nodes: H100s all in use, A100s with one used, a cordoned A100.
- ``many``: (entries, inventory) with 200 environments and 50 GPU nodes.
- ``User``: a stand-in for JupyterHub's user (name, groups, admin) as templates read it.
- ``parse``: parses rendered HTML with the standard library parser (BeautifulSoup).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from bs4 import BeautifulSoup

from tkhub.catalog.schemas import ImagePublic
from tkhub.gpu.inventory import local_node
from tkhub.gpu.model import GpuDevice, GpuNode, GpuPool, Inventory

H100 = "NVIDIA H100 80GB HBM3"


def entry(name: str, gpu: str = "optional", **kw) -> ImagePublic:
    return ImagePublic(name=name, kind="oci", image=f"reg/{name}:1", gpu=gpu, **kw)


@dataclass
class Group:
    name: str


@dataclass
class User:
    name: str = "alice"
    groups: list[Group] = field(default_factory=list)
    admin: bool = False


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


def many_entries(n: int = 200) -> list[ImagePublic]:
    needs = ("optional", "required", "none")
    return [
        entry(
            f"env-{i:03d}",
            needs[i % 3],
            display_name=f"Environment {i}",
            description="A Jupyter environment with a longer description " * 2,
            packages=["numpy", "pandas", "torch", "jax"],
            resources={"cpu_limit": "4", "mem_limit": "16Gi"},
            default=i == 0,
        )
        for i in range(n)
    ]


def many_nodes(n: int = 50) -> Inventory:
    models = ("NVIDIA-H100", "NVIDIA-A100", "NVIDIA-L4", "Tesla-T4")
    nodes = tuple(
        GpuNode(
            f"gpu-node-{i:02d}",
            (GpuPool(models[i % 4], total=8, allocated=i % 9),),
            schedulable=i % 10 != 7,
            reason="cordoned" if i % 10 == 7 else "",
        )
        for i in range(n)
    )
    return Inventory(mode="kubernetes", nodes=nodes)


@pytest.fixture
def many() -> tuple[list[ImagePublic], Inventory]:
    return many_entries(), many_nodes()


@pytest.fixture
def parse():
    def _parse(html: str) -> BeautifulSoup:
        return BeautifulSoup(html, "html.parser")

    return _parse
