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

from dataclasses import dataclass
from typing import Literal

from tkhub.catalog.schemas import ImagePublic

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
