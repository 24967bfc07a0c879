"""One GPU inventory model for both modes.

Local mode fills it from NVML (one node: this machine, with its devices); the
kubernetes mode from Node and Pod objects (many nodes, counts per resource).
The placement choices, the spawn page and ``GET /api/v1/nodes/gpu`` read only this.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

GPU_RESOURCE = "nvidia.com/gpu"
PlacementKind = Literal["cpu", "auto", "model", "node", "device"]
_CPU_WORDS = ("", "none", "cpu", "false", "0")  # "gpu=0" in a link means CPU only
_AUTO_WORDS = ("auto", "any", "true")
_PREFIXES = ("model", "node", "device")


@dataclass(frozen=True)
class Placement:
    """Where a server runs: CPU only, any free GPU, or a named model, node or device.

    The one place a placement is spelled: ``key`` is its form/query/link value
    ("none", "auto", "model:<m>", "node:<n>", "device:<index>"), ``from_key`` reads
    it back, ``describe`` says it in words, ``matches`` picks local devices.
    """

    kind: PlacementKind
    value: str = ""  # model name, node name, or device index/UUID
    count: int = 0  # GPUs requested; 0 for kind "cpu"

    @property
    def key(self) -> str:
        if self.kind == "cpu":
            return "none"
        if self.kind == "auto":
            return "auto"
        return f"{self.kind}:{self.value}"

    @property
    def uses_gpu(self) -> bool:
        return self.kind != "cpu"

    @classmethod
    def from_key(cls, raw: str, count: int = 1) -> Placement | None:
        """The placement a key names, or None for a bare name the inventory must resolve."""
        value = raw.strip()
        if value.lower() in _CPU_WORDS:
            return cls("cpu")
        if value.lower() in _AUTO_WORDS:
            return cls("auto", count=count)
        prefix, sep, rest = value.partition(":")
        if sep and prefix in _PREFIXES:
            return cls(prefix, rest, count)  # type: ignore[arg-type]
        return None

    def describe(self, *, short: bool = False) -> str:
        """In words, for pages and messages: "CPU only", "GPU 1", "any free GPU × 2".

        ``short`` names a model, node or device by its value alone ("1").
        """
        if self.kind == "cpu":
            return "CPU only"
        words = {"auto": "any free GPU"}.get(self.kind, self.value)
        if self.kind == "device" and not short:
            words = f"GPU {self.value}"
        return f"{words} × {self.count}" if self.count > 1 else words

    def matches(self, device: GpuDevice) -> bool:
        """Whether a local device can serve this placement (local mode has one node)."""
        if self.kind == "model":
            return device.model == self.value
        if self.kind == "device":
            return self.value in (device.index, device.uuid)
        return self.uses_gpu


@dataclass(frozen=True)
class GpuDevice:
    """One allocatable unit on this machine (local mode): a whole GPU or a MIG device."""

    index: str  # "0", or "0:1" for MIG device 1 on GPU 0 (as nvidia-smi -L numbers them)
    uuid: str  # "GPU-..." or "MIG-..."; what CUDA_VISIBLE_DEVICES gets
    model: str  # "NVIDIA H100 80GB HBM3"
    memory_total_mib: int
    memory_used_mib: int = 0
    utilization_pct: int | None = None
    holders: tuple[str, ...] = ()  # servers that hold it ("alice/", "bob/gpu"), from the ledger


@dataclass(frozen=True)
class GpuPool:
    """GPUs of one model (and one extended resource) on one node."""

    model: str
    resource: str = GPU_RESOURCE  # or "nvidia.com/mig-1g.10gb"
    memory_mib: int | None = None
    total: int = 0
    allocated: int = 0
    devices: tuple[GpuDevice, ...] = ()  # local mode only
    shared_replicas: int = 1  # time-slicing replicas per physical GPU (GFD gpu.replicas)

    @property
    def free(self) -> int:
        return max(self.total - self.allocated, 0)


@dataclass(frozen=True)
class GpuNode:
    """A machine that may run servers; ``reason`` says why it cannot right now."""

    name: str
    pools: tuple[GpuPool, ...] = ()
    schedulable: bool = True
    reason: str = ""
    cuda_driver: str | None = None  # newest CUDA its driver runs ("12.4"); None: unknown

    @property
    def total(self) -> int:
        return sum(p.total for p in self.pools)

    @property
    def free(self) -> int:
        return sum(p.free for p in self.pools) if self.schedulable else 0


@dataclass(frozen=True)
class Inventory:
    """Every GPU node the hub can place servers on, with what is free now."""

    mode: Literal["local", "kubernetes"]
    nodes: tuple[GpuNode, ...] = ()
    note: str = ""  # e.g. "no NVIDIA driver on this machine": zero GPUs, not an error

    @property
    def total(self) -> int:
        return sum(n.total for n in self.nodes)

    @property
    def free(self) -> int:
        return sum(n.free for n in self.nodes)

    def to_dict(self) -> dict[str, Any]:
        """JSON body of ``GET /api/v1/nodes/gpu``."""
        data = asdict(self)
        for node, node_data in zip(self.nodes, data["nodes"], strict=True):
            node_data["total"] = node.total
            node_data["free"] = node.free
            for pool, pool_data in zip(node.pools, node_data["pools"], strict=True):
                pool_data["free"] = pool.free
        data["total"] = self.total
        data["free"] = self.free
        return data
