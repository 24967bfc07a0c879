"""Environment variables that confine a local server to its assigned GPUs."""

from __future__ import annotations

from collections.abc import Iterable

from tkhub.gpu.model import GpuDevice


def gpu_environment(devices: Iterable[GpuDevice]) -> dict[str, str]:
    """CUDA/NVIDIA visibility by UUID, so renumbering can never expose another GPU."""
    uuids = ",".join(d.uuid for d in devices)
    return {
        "CUDA_VISIBLE_DEVICES": uuids,
        "NVIDIA_VISIBLE_DEVICES": uuids or "void",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }
