"""The only module that talks to NVML: what the driver reports, as plain records.

Tests replace ``read_devices`` (the hardware boundary) to run without a GPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

log = logging.getLogger(__name__)

MIB = 1024 * 1024


class NvmlUnavailable(Exception):
    """No NVIDIA driver or library on this machine; ``str()`` says which, in plain words."""


@dataclass(frozen=True)
class NvmlDevice:
    """One allocatable unit as NVML reports it: a whole GPU or one MIG device."""

    index: str
    uuid: str
    name: str
    memory_total_mib: int
    memory_used_mib: int
    utilization_pct: int | None
    cuda_driver: str | None = None  # newest CUDA the driver runs, "12.4"


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _mig_devices(pynvml: Any, handle: Any, parent: int, name: str) -> list[NvmlDevice]:
    """The MIG devices of one GPU in MIG mode, numbered as ``nvidia-smi -L`` does."""
    found: list[NvmlDevice] = []
    for slot in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except pynvml.NVMLError:
            continue  # empty slot
        mem = pynvml.nvmlDeviceGetMemoryInfo(mig)
        found.append(
            NvmlDevice(
                index=f"{parent}:{slot}",
                uuid=_text(pynvml.nvmlDeviceGetUUID(mig)),
                name=_text(pynvml.nvmlDeviceGetName(mig)) or f"{name} MIG",
                memory_total_mib=mem.total // MIB,
                memory_used_mib=mem.used // MIB,
                utilization_pct=None,  # NVML reports no utilisation per MIG device
            )
        )
    return found


def _mig_enabled(pynvml: Any, handle: Any) -> bool:
    try:
        current, _pending = pynvml.nvmlDeviceGetMigMode(handle)
    except pynvml.NVMLError:
        return False  # GPUs without MIG support
    return bool(current)


def _utilization(pynvml: Any, handle: Any) -> int | None:
    try:
        return int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except pynvml.NVMLError:
        return None


def _cuda_driver(pynvml: Any) -> str | None:
    try:
        version = int(pynvml.nvmlSystemGetCudaDriverVersion_v2())  # 12040 -> "12.4"
    except (pynvml.NVMLError, AttributeError):
        return None
    return f"{version // 1000}.{version % 1000 // 10}"


def read_devices() -> list[NvmlDevice]:
    """Every allocatable unit; raises ``NvmlUnavailable`` without a usable driver."""
    try:
        import pynvml
    except ImportError as exc:  # pragma: no cover - nvidia-ml-py is a dependency
        raise NvmlUnavailable("the nvidia-ml-py package is not installed") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"no NVIDIA driver on this machine ({exc})") from exc
    try:
        devices: list[NvmlDevice] = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = _text(pynvml.nvmlDeviceGetName(handle))
            if _mig_enabled(pynvml, handle):
                devices.extend(_mig_devices(pynvml, handle, i, name))
                continue
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append(
                NvmlDevice(
                    index=str(i),
                    uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                    name=name,
                    memory_total_mib=mem.total // MIB,
                    memory_used_mib=mem.used // MIB,
                    utilization_pct=_utilization(pynvml, handle),
                )
            )
        cuda = _cuda_driver(pynvml)
        return [replace(d, cuda_driver=cuda) for d in devices]
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"the NVIDIA driver did not answer ({exc})") from exc
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            log.debug("nvmlShutdown failed", exc_info=True)
