"""Spawn-to-ready of a GPU server versus a CPU server, through a real local hub.

Needs an NVIDIA GPU (prints a message and exits 0 without one). Alternates CPU and
GPU spawns of the default "python" environment ("Python (this machine)"); goal: GPU/CPU <= 1.10.

    .venv/bin/python bench/gpu_spawn.py [rounds]
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from pathlib import Path

from tkhub.gpu import nvml

HARNESS = Path(__file__).resolve().parents[1] / "tests" / "integration" / "gpu" / "conftest.py"


def _harness():
    sys.path.insert(0, str(HARNESS.parents[2] / "support"))  # its hubproc helpers
    spec = importlib.util.spec_from_file_location("tkhub_gpu_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def spawn_seconds(hub, user: str, gpu: str) -> float:
    start = time.perf_counter()
    response = hub.spawn(user, {"image": ["python"], "gpu": [gpu]})
    if response.status_code not in (201, 202):
        raise SystemExit(f"spawn failed ({response.status_code}): {response.text}")
    hub.wait_ready(user)
    elapsed = time.perf_counter() - start
    hub.stop(user)
    return elapsed


def main(rounds: int = 5) -> None:
    try:
        gpus = nvml.read_devices()
    except nvml.NvmlUnavailable as exc:
        print(f"skipped: needs an NVIDIA GPU ({exc})")
        return
    if not gpus:
        print("skipped: NVML lists no GPU")
        return
    with _harness().running_hub() as hub:
        user = hub.new_user()
        spawn_seconds(hub, user, "none")  # warm-up: first spawn creates the account
        cpu, gpu = [], []
        for _ in range(rounds):
            cpu.append(spawn_seconds(hub, user, "none"))
            gpu.append(spawn_seconds(hub, user, "auto"))
    c, g = statistics.median(cpu), statistics.median(gpu)
    print(f"{rounds} rounds on {gpus[0].name}")
    print(f"CPU server spawn-to-ready  median {c:6.2f} s  ({', '.join(f'{x:.2f}' for x in cpu)})")
    print(f"GPU server spawn-to-ready  median {g:6.2f} s  ({', '.join(f'{x:.2f}' for x in gpu)})")
    print(f"ratio GPU/CPU: {g / c:.2f}x; goal <= 1.10")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
