"""CPU/memory size presets: a share of the environment's limits (the largest a server gets)."""

from __future__ import annotations

from functools import cache

from tkhub.catalog.schemas import Resources
from tkhub.quantity import QuantityError, cpu_cores, memory_bytes

DEFAULT_SIZE = "full"
SIZES: dict[str, tuple[str, float]] = {
    "full": ("Full", 1.0),
    "half": ("Half", 0.5),
    "quarter": ("Quarter", 0.25),
}


def _format_cpu(cores: float) -> str:
    return f"{cores:g} CPU" if cores >= 1 else f"{cores * 1000:g}m CPU"


def _format_mem(n: int) -> str:
    gib = n / 2**30
    return f"{gib:.3g} GiB" if gib >= 1 else f"{n / 2**20:.0f} MiB"


def scaled_resources(resources: Resources, size: str) -> Resources:
    """The entry's resources at a size preset: limits scaled, guarantees kept below them."""
    share = SIZES.get(size or DEFAULT_SIZE, SIZES[DEFAULT_SIZE])[1]
    if share == 1.0:
        return resources
    out: dict[str, str | None] = resources.model_dump()
    if resources.cpu_limit:
        out["cpu_limit"] = f"{cpu_cores(resources.cpu_limit) * share:g}"
    if resources.mem_limit:
        out["mem_limit"] = str(int(memory_bytes(resources.mem_limit) * share))
    for limit, guarantee, conv in (
        ("cpu_limit", "cpu_guarantee", cpu_cores),
        ("mem_limit", "mem_guarantee", memory_bytes),
    ):
        if out[limit] and out[guarantee] and conv(out[guarantee]) > conv(out[limit]):  # type: ignore[arg-type]
            out[guarantee] = out[limit]
    return Resources.model_validate(out)


def size_labels(resources: Resources) -> dict[str, str]:
    """``{"full": "4 CPU · 16 GiB", ...}``; empty when the entry sets no limits."""
    return dict(_size_labels(resources.cpu_limit, resources.mem_limit))


@cache
def _size_labels(cpu_limit: str | None, mem_limit: str | None) -> tuple[tuple[str, str], ...]:
    try:
        cpu = cpu_cores(cpu_limit) if cpu_limit else None
        mem = memory_bytes(mem_limit) if mem_limit else None
    except QuantityError:
        return ()
    if cpu is None and mem is None:
        return ()
    labels = []
    for key, (_, share) in SIZES.items():
        parts = []
        if cpu is not None:
            parts.append(_format_cpu(cpu * share))
        if mem is not None:
            parts.append(_format_mem(int(mem * share)))
        labels.append((key, " · ".join(parts)))
    return tuple(labels)
