"""What a user may pick now: the environments visible to them and each one's placements.

Visibility by group is decided here, once per request (``spawn_choices``); the
spawn page, the parser and the start all read the resulting ``SpawnChoices``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from tkhub.catalog.schemas import ImagePublic
from tkhub.gpu.model import GpuNode, GpuPool, Inventory, Placement
from tkhub.selection.model import PlacementChoice


def gpu_units(inventory: Inventory) -> list[tuple[GpuNode, GpuPool]]:
    return [(n, p) for n in inventory.nodes for p in n.pools]


def _no_gpu_reason(inventory: Inventory) -> str:
    if inventory.mode == "local":
        return "no GPU on this machine"
    return "no GPU node in the cluster"


def _choice(
    placement: Placement, label: str, pairs: list[tuple[GpuNode, GpuPool]], busy: str
) -> PlacementChoice:
    """A choice over (node, pool) pairs: free units, and the most one server can get."""
    total = sum(p.total for _, p in pairs)
    free = sum(p.free for n, p in pairs if n.schedulable)
    if all(p.devices for _, p in pairs):
        most = free  # local mode, one machine: a server may take every free device
    else:
        # a pod lives on one node and asks for one resource
        most = max((p.free for n, p in pairs if n.schedulable), default=0)
    reason = ""
    if free == 0:
        blocked = sorted({f"{n.name} is {n.reason}" for n, _ in pairs if not n.schedulable})
        all_blocked = all(not n.schedulable for n, _ in pairs)
        reason = "; ".join(blocked) if all_blocked else busy
    return PlacementChoice(
        placement=replace(placement, count=1),
        label=label,
        free=free,
        total=total,
        max_count=most,
        enabled=free > 0,
        reason=reason,
    )


def _gpu_choices(inventory: Inventory) -> list[PlacementChoice]:
    pairs = gpu_units(inventory)
    if not pairs:
        reason = _no_gpu_reason(inventory)
        return [
            PlacementChoice(
                Placement("auto", count=1), "Any free GPU", enabled=False, reason=reason
            )
        ]
    choices = [
        _choice(
            Placement("auto"),
            "Any free GPU",
            pairs,
            f"all {sum(p.total for _, p in pairs)} GPUs are in use",
        )
    ]
    models = sorted({p.model for _, p in pairs})
    for model in models:
        group = [(n, p) for n, p in pairs if p.model == model]
        n_total = sum(p.total for _, p in group)
        choices.append(
            _choice(Placement("model", model), model, group, f"all {n_total} {model} are in use")
        )
    if inventory.mode == "kubernetes":
        for node in inventory.nodes:
            group = [(node, p) for p in node.pools]
            if not group:
                continue
            models_here = ", ".join(sorted({p.model for p in node.pools}))
            busy = f"all {node.total} {models_here} on {node.name} are in use"
            choices.append(
                _choice(Placement("node", node.name), f"{models_here} on {node.name}", group, busy)
            )
    else:
        for node, pool in pairs:
            for device in pool.devices:
                one = GpuPool(
                    model=device.model,
                    total=1,
                    allocated=1 if len(device.holders) >= pool.shared_replicas else 0,
                    devices=(device,),
                )
                held = ", ".join(device.holders)
                choices.append(
                    _choice(
                        Placement("device", device.index),
                        f"GPU {device.index}: {device.model}",
                        [(node, one)],
                        f"GPU {device.index} is in use by {held}" if held else "in use",
                    )
                )
    return choices


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _cuda_needed(entry: ImagePublic) -> str | None:
    return entry.facts.cuda if entry.facts else None


def for_cuda(inventory: Inventory, cuda: str | None) -> Inventory:
    """``inventory`` with the nodes whose driver cannot run CUDA ``cuda`` unschedulable,
    saying so (a node whose driver is unknown is offered: the pod reports a mismatch)."""
    if not cuda:
        return inventory
    nodes = tuple(
        replace(
            node,
            schedulable=False,
            reason=f"limited to CUDA {node.cuda_driver} by its driver; "
            f"this environment needs CUDA {cuda}",
        )
        if node.cuda_driver and _version(node.cuda_driver) < _version(cuda)
        else node
        for node in inventory.nodes
    )
    return replace(inventory, nodes=nodes)


def placement_choices(entry: ImagePublic, inventory: Inventory) -> list[PlacementChoice]:
    """What the spawn page offers for ``entry`` now; unschedulable ones disabled, with why."""
    need = entry.gpu
    choices: list[PlacementChoice] = []
    if need != "required":
        choices.append(PlacementChoice(Placement("cpu"), "CPU only"))
    if need != "none":
        choices.extend(_gpu_choices(for_cuda(inventory, _cuda_needed(entry))))
    return choices


def choices_for(
    entries: Iterable[ImagePublic], inventory: Inventory
) -> dict[str, list[PlacementChoice]]:
    """``placement_choices`` per entry; entries with the same GPU and CUDA need share one."""
    by_need: dict[tuple[str, str | None], list[PlacementChoice]] = {}
    out: dict[str, list[PlacementChoice]] = {}
    for entry in entries:
        need = (entry.gpu, _cuda_needed(entry))
        if need not in by_need:
            by_need[need] = placement_choices(entry, inventory)
        out[entry.name] = by_need[need]
    return out


@dataclass(frozen=True)
class SpawnChoices:
    """The environments one user may start now, with the inventory they were offered on.

    ``forbidden`` names entries that exist but are kept from this user's groups, so a
    request for one is refused as "not available" rather than "no such environment".
    """

    entries: tuple[ImagePublic, ...]
    inventory: Inventory
    by_entry: dict[str, list[PlacementChoice]]
    forbidden: dict[str, ImagePublic]

    def entry(self, name: str) -> ImagePublic | None:
        return next((e for e in self.entries if e.name == name), None)

    def default_entry(self) -> ImagePublic | None:
        return next((e for e in self.entries if e.default), None)

    def with_inventory(self, inventory: Inventory) -> SpawnChoices:
        """The same environments, their placements re-read against fresh availability."""
        return replace(self, inventory=inventory, by_entry=choices_for(self.entries, inventory))


def spawn_choices(
    entries: Sequence[ImagePublic],
    inventory: Inventory,
    *,
    user_groups: Iterable[str] = (),
    admin: bool = False,
) -> SpawnChoices:
    """Filter ``entries`` to what this user may see (hidden ones to nobody) and offer each."""
    groups = set(user_groups)
    shown = tuple(e for e in entries if e.visible_to(groups, admin=admin))
    names = {e.name for e in shown}
    forbidden = {e.name: e for e in entries if not e.hidden and e.name not in names}
    return SpawnChoices(shown, inventory, choices_for(shown, inventory), forbidden)
