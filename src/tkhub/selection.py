"""One selection model: catalog + inventory + user -> choices; form/query -> selection.

The options form and the launch-link query string (``/hub/spawn?image=...&gpu=...``)
are both parsed here into one validated ``Selection`` that each spawner applies in
its own way. Nothing a user submits reaches a spawner without passing through here.

Parameter names (form fields and query arguments alike):
    image   catalog entry name
    gpu     none | auto | <model> | <node> | <device>, or explicitly
            model:<m> | node:<n> | device:<index-or-uuid>
    count   number of GPUs (default 1; ignored for gpu=none)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from tkhub.catalog.schemas import ImagePublic
from tkhub.gpu.model import GpuNode, GpuPool, Inventory

PlacementKind = Literal["cpu", "auto", "model", "node", "device"]


class SelectionError(ValueError):
    """A submitted selection that cannot be honoured; ``str()`` is for the user."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Placement:
    """Where a server runs: CPU only, any free GPU, or a named model, node or device."""

    kind: PlacementKind
    value: str = ""  # model name, node name, or device index/UUID
    count: int = 0  # GPUs requested; 0 for kind "cpu"

    @property
    def key(self) -> str:
        """The form/query value that selects this placement ("none", "auto", "node:a")."""
        if self.kind == "cpu":
            return "none"
        if self.kind == "auto":
            return "auto"
        return f"{self.kind}:{self.value}"

    @property
    def uses_gpu(self) -> bool:
        return self.kind != "cpu"


@dataclass(frozen=True)
class PlacementChoice:
    """A placement offered for one environment, enabled or disabled with a reason."""

    placement: Placement
    label: str  # "NVIDIA H100 80GB HBM3 on node-b"
    free: int = 0
    total: int = 0
    max_count: int = 0  # most GPUs one server can get here now (1..N)
    enabled: bool = True
    reason: str = ""  # why disabled: "all 2 H100 on node-b are in use"


@dataclass(frozen=True)
class Selection:
    """A validated request: the catalog entry and where to place it."""

    image: ImagePublic
    placement: Placement


# --- choices -----------------------------------------------------------------------


def _units(inventory: Inventory) -> list[tuple[GpuNode, GpuPool]]:
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
    pairs = _units(inventory)
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


def placement_choices(entry: ImagePublic, inventory: Inventory) -> list[PlacementChoice]:
    """What the spawn page offers for ``entry`` now; unschedulable ones disabled, with why."""
    need = str(getattr(entry.gpu, "value", entry.gpu))
    choices: list[PlacementChoice] = []
    if need != "required":
        choices.append(PlacementChoice(Placement("cpu"), "CPU only"))
    if need != "none":
        choices.extend(_gpu_choices(inventory))
    return choices


# --- parsing -------------------------------------------------------------------------


def _one(params: Mapping[str, Sequence[str]], name: str) -> str:
    values = params.get(name) or []
    if isinstance(values, str):
        values = [values]
    values = [v.strip() for v in values if v.strip()]
    if len(set(values)) > 1:
        raise SelectionError(name, f"give one value, not {len(values)}")
    return values[0] if values else ""


def _entry(name: str, entries: Sequence[ImagePublic], groups: set[str], admin: bool) -> ImagePublic:
    if not name:
        defaults = [
            e for e in entries if getattr(e, "default", False) and e.visible_to(groups, admin=admin)
        ]
        if defaults:
            return defaults[0]
        raise SelectionError("image", "choose an environment")
    found = next((e for e in entries if e.name == name), None)
    if found is None or found.hidden:  # hidden entries are not offered to anyone
        raise SelectionError("image", f"there is no environment named {name!r}")
    if not found.visible_to(groups, admin=admin):
        raise SelectionError("image", f"{found.title} is not available to your groups")
    return found


def _placement(raw: str, inventory: Inventory) -> Placement:
    """Resolve a bare or prefixed ``gpu`` value against the inventory."""
    value = raw.strip()
    if value.lower() in ("", "none", "cpu", "false", "0"):
        return Placement("cpu")
    if value.lower() in ("auto", "any", "true"):
        return Placement("auto", count=1)
    prefix, sep, rest = value.partition(":")
    if sep and prefix in ("model", "node", "device"):
        return Placement(prefix, rest, 1)  # type: ignore[arg-type]
    pairs = _units(inventory)
    if any(p.model == value for _, p in pairs):
        return Placement("model", value, 1)
    if inventory.mode == "kubernetes" and any(n.name == value for n in inventory.nodes):
        return Placement("node", value, 1)
    if any(value in (d.index, d.uuid) for _, p in pairs for d in p.devices):
        return Placement("device", value, 1)
    raise SelectionError("gpu", f"there is no GPU, model or node named {value!r}")


def _count_value(raw: str) -> int:
    if not raw:
        return 1
    try:
        count = int(raw)
    except ValueError:
        raise SelectionError("count", f"{raw!r} is not a whole number") from None
    if count < 1:
        raise SelectionError("count", "must be at least 1")
    return count


def _matching(choice: PlacementChoice, placement: Placement) -> bool:
    p = choice.placement
    if p.kind != placement.kind:
        return False
    return p.value == placement.value


def parse_selection(
    params: Mapping[str, Sequence[str]],
    *,
    entries: Sequence[ImagePublic],
    inventory: Inventory,
    user_groups: set[str] | frozenset[str] | Sequence[str] = (),
    admin: bool = False,
) -> Selection:
    """Validate form/query params into a ``Selection``; raises ``SelectionError``."""
    entry = _entry(_one(params, "image"), entries, set(user_groups), admin)
    need = str(getattr(entry.gpu, "value", entry.gpu))
    raw_gpu = _one(params, "gpu")
    if not raw_gpu:
        raw_gpu = "auto" if need == "required" else "none"
    placement = _placement(raw_gpu, inventory)
    if placement.kind == "device":
        placement = _device_index(placement, inventory)
    if placement.uses_gpu and need == "none":
        raise SelectionError("gpu", f"{entry.title} runs on CPU only")
    if not placement.uses_gpu:
        if need == "required":
            raise SelectionError("gpu", f"{entry.title} needs a GPU")
        return Selection(entry, placement)
    count = _count_value(_one(params, "count"))
    choice = next((c for c in placement_choices(entry, inventory) if _matching(c, placement)), None)
    if choice is None:
        raise SelectionError("gpu", f"there is no GPU {placement.value!r}")
    if not choice.enabled:
        raise SelectionError("gpu", f"{choice.label}: {choice.reason}")
    if count > choice.max_count:
        raise SelectionError(
            "count", f"at most {choice.max_count} GPU(s) are free for {choice.label} now"
        )
    return Selection(entry, replace(placement, count=count))


def _device_index(placement: Placement, inventory: Inventory) -> Placement:
    """A device given by UUID becomes its index, the key the choices use."""
    for _, pool in _units(inventory):
        for device in pool.devices:
            if placement.value in (device.index, device.uuid):
                return replace(placement, value=device.index)
    raise SelectionError("gpu", f"there is no GPU {placement.value!r} on this machine")


def selection_to_params(selection: Selection) -> dict[str, str]:
    """Query parameters that reproduce ``selection`` (for launch links)."""
    params = {"image": selection.image.name, "gpu": selection.placement.key}
    if selection.placement.uses_gpu and selection.placement.count > 1:
        params["count"] = str(selection.placement.count)
    return params
