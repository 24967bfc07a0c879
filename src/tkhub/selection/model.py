"""The objects a selection is made of: what is offered, and what was chosen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tkhub.catalog.schemas import ImagePublic, Resources
from tkhub.gpu.model import Placement
from tkhub.selection.sizes import DEFAULT_SIZE, scaled_resources


class SelectionError(ValueError):
    """A submitted selection that cannot be honoured; ``str()`` is for the user.

    ``forbidden``: the environment exists but is kept from the user's groups.
    """

    def __init__(self, field: str, reason: str, *, forbidden: bool = False) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.forbidden = forbidden


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
    """A validated request: the catalog entry, where to place it, and its size."""

    image: ImagePublic
    placement: Placement
    size: str = DEFAULT_SIZE

    @property
    def resources(self) -> Resources | None:
        """The entry's resources at the chosen size (limits scaled, guarantees kept below)."""
        if self.image.resources is None:
            return None
        return scaled_resources(self.image.resources, self.size)

    def to_options(self) -> dict[str, str]:
        """Parameters that reproduce this selection (launch links, job submissions)."""
        return options_for(self.image.name, self.placement.key, self.placement.count, self.size)


def options_for(image: str, gpu: str, count: int = 1, size: str = DEFAULT_SIZE) -> dict[str, str]:
    """The request parameters of a selection: ``count`` only for several GPUs, ``size``
    only when it is not the default."""
    params = {"image": image, "gpu": gpu}
    cpu = Placement.from_key(gpu) == Placement("cpu")
    if count > 1 and not cpu:
        params["count"] = str(count)
    if size != DEFAULT_SIZE:
        params["size"] = size
    return params


def _first(options: Mapping[str, Any], key: str) -> str:
    value = options.get(key)
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value or "").strip()


def describe_options(options: Mapping[str, Any] | None) -> str:
    """Saved ``user_options`` in words for pages: "pytorch · any free GPU × 2"."""
    options = options or {}
    raw_gpu = _first(options, "gpu")
    count = _first(options, "count")
    placement = Placement.from_key(raw_gpu, int(count) if count.isdigit() else 1)
    where = placement.describe(short=True) if placement is not None else raw_gpu
    return f"{_first(options, 'image') or 'default environment'} · {where}"
