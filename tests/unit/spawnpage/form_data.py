"""Catalog entries, inventories and a user stand-in for the spawn page unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from tkhub.catalog.schemas import ImagePublic
from tkhub.gpu.model import GpuNode, GpuPool, Inventory
from tkhub.selection import SpawnChoices, spawn_choices
from tkhub.spawner import user_access
from tkhub.spawnpage.http_errors import checked_selection
from tkhub.spawnpage.render import render_options_form

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


def choices(entries, inventory, user=None) -> SpawnChoices:
    groups, admin = user_access(user or User())
    return spawn_choices(entries, inventory, user_groups=groups, admin=admin)


def check(params, *, entries, inventory, user_groups=(), admin=False, link=False):
    """Validate as the spawner does for a submit: the user's choices, then the parse."""
    user = User(groups=[Group(g) for g in user_groups], admin=admin)
    return checked_selection(params, choices(entries, inventory, user), link=link)


def render(entries, inventory, *, selected=None, error=None, user=None):
    user = user or User()
    return render_options_form(
        choices(entries, inventory, user), selected, error, user_name=user.name
    )
