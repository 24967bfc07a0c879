"""Request parameters -> ``Selection``: the one parser of forms, launch links and REST bodies.

Parameter names (form fields, query arguments and REST ``user_options`` alike):
    image   catalog entry name
    gpu     none | auto | <model> | <node> | <device>, or explicitly
            model:<m> | node:<n> | device:<index-or-uuid>
    count   number of GPUs (default 1; ignored for gpu=none)
    size    full | half | quarter (a share of the environment's CPU/memory limits)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from tkhub.catalog.schemas import ImagePublic
from tkhub.gpu.model import Inventory, Placement
from tkhub.selection.choices import SpawnChoices, gpu_units, placement_choices
from tkhub.selection.model import PlacementChoice, Selection, SelectionError
from tkhub.selection.sizes import DEFAULT_SIZE, SIZES

PARAMS = ("image", "gpu", "count", "size")
Params = Mapping[str, Sequence[str]]


def normalize_params(raw: Mapping[str, Any], *, strict: bool = False) -> dict[str, list[str]]:
    """Form data, query arguments or a REST body as ``{name: [str, ...]}`` of our names.

    Forms and links carry other fields (``_xsrf``, ``next``) that are dropped; a REST
    body (``strict``) may carry nothing else, so a typo never starts the default.
    """
    unknown = sorted(str(k) for k in raw if k not in PARAMS)
    if strict and unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise SelectionError(
            "options", f"unknown option {names}; the options are {', '.join(PARAMS)}"
        )
    out: dict[str, list[str]] = {}
    for name in PARAMS:
        value = raw.get(name)
        if value is None:
            continue
        values = [value] if isinstance(value, str | bytes | int) else list(value)
        out[name] = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    return out


def _one(params: Params, name: str) -> str:
    values = params.get(name) or []
    if isinstance(values, str):
        values = [values]
    values = [v.strip() for v in values if v.strip()]
    if len(set(values)) > 1:
        raise SelectionError(name, f"give one value, not {len(values)}")
    return values[0] if values else ""


def _entry(name: str, choices: SpawnChoices) -> ImagePublic:
    if not name:
        default = choices.default_entry()
        if default is not None:
            return default
        raise SelectionError("image", "choose an environment")
    found = choices.entry(name)
    if found is not None:
        return found
    forbidden = choices.forbidden.get(name)
    if forbidden is not None:
        raise SelectionError(
            "image", f"{forbidden.title} is not available to your groups", forbidden=True
        )
    raise SelectionError("image", f"there is no environment named {name!r}")


def _placement(raw: str, inventory: Inventory) -> Placement:
    """Resolve a bare or prefixed ``gpu`` value against the inventory."""
    placement = Placement.from_key(raw)
    if placement is not None:
        return placement
    value = raw.strip()
    pairs = gpu_units(inventory)
    if any(p.model == value for _, p in pairs):
        return Placement("model", value, 1)
    if inventory.mode == "kubernetes" and any(n.name == value for n in inventory.nodes):
        return Placement("node", value, 1)
    if any(value in (d.index, d.uuid) for _, p in pairs for d in p.devices):
        return Placement("device", value, 1)
    raise SelectionError("gpu", f"there is no GPU, model or node named {value!r}")


def _device_index(placement: Placement, inventory: Inventory) -> Placement:
    """A device given by UUID becomes its index, the key the choices use."""
    for _, pool in gpu_units(inventory):
        for device in pool.devices:
            if placement.value in (device.index, device.uuid):
                return replace(placement, value=device.index)
    raise SelectionError("gpu", f"there is no GPU {placement.value!r} on this machine")


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


def _size_value(raw: str) -> str:
    if not raw:
        return DEFAULT_SIZE
    if raw not in SIZES:
        raise SelectionError("size", f"{raw!r} is not one of {', '.join(SIZES)}")
    return raw


def _offered(placement: Placement, offered: Sequence[PlacementChoice]) -> PlacementChoice:
    """The enabled choice for ``placement`` among those offered now, with room for its count."""
    choice = next(
        (
            c
            for c in offered
            if (c.placement.kind, c.placement.value) == (placement.kind, placement.value)
        ),
        None,
    )
    if choice is None:
        raise SelectionError("gpu", f"there is no GPU {placement.value!r}")
    if not choice.enabled:
        raise SelectionError("gpu", f"{choice.label}: {choice.reason}")
    if placement.count > choice.max_count:
        raise SelectionError(
            "count", f"at most {choice.max_count} GPU(s) are free for {choice.label} now"
        )
    return choice


def _check_need(entry: ImagePublic, placement: Placement) -> None:
    if placement.uses_gpu and entry.gpu == "none":
        raise SelectionError("gpu", f"{entry.title} runs on CPU only")
    if not placement.uses_gpu and entry.gpu == "required":
        raise SelectionError("gpu", f"{entry.title} needs a GPU")


def parse_selection(params: Params, choices: SpawnChoices) -> Selection:
    """Validate request params against what the user may pick now; raises ``SelectionError``."""
    entry = _entry(_one(params, "image"), choices)
    raw_gpu = _one(params, "gpu") or ("auto" if entry.gpu == "required" else "none")
    placement = _placement(raw_gpu, choices.inventory)
    if placement.kind == "device":
        placement = _device_index(placement, choices.inventory)
    _check_need(entry, placement)
    if placement.uses_gpu:
        placement = replace(placement, count=_count_value(_one(params, "count")))
        _offered(placement, choices.by_entry.get(entry.name, ()))
    return Selection(entry, placement, _size_value(_one(params, "size")))


def recheck_placement(selection: Selection, inventory: Inventory) -> Selection:
    """The same selection, its placement checked again against availability now.

    Between submit and start a GPU may have been taken; the environment and size were
    validated when the request was parsed and are not parsed again.
    """
    if selection.placement.uses_gpu:
        _offered(selection.placement, placement_choices(selection.image, inventory))
    return selection
