"""Time ``inventory_from_objects`` on a synthetic 100-node, 5,000-pod cluster.

Baseline (same run): ``json.loads`` of the same Node and Pod list, i.e. what it
costs just to receive the objects. Goal: inventory <= 50 ms.

    .venv/bin/python bench/inventory.py
"""

from __future__ import annotations

import json
import random
import statistics
import time

from tkhub.gpu.kubernetes import inventory_from_objects

MODELS = ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB", "NVIDIA-L4", "Tesla-T4"]


def make_cluster(n_nodes: int = 100, n_pods: int = 5000) -> tuple[list[dict], list[dict]]:
    rnd = random.Random(4)
    nodes = []
    for i in range(n_nodes):
        gpus = {"nvidia.com/gpu": str(rnd.choice([0, 2, 4, 8]))}
        if i % 10 == 0:
            gpus = {"nvidia.com/mig-1g.10gb": "7", "nvidia.com/mig-3g.40gb": "2"}
        res = {"cpu": "64", "memory": "512Gi", "pods": "110", **gpus}
        nodes.append(
            {
                "metadata": {
                    "name": f"node-{i:03d}",
                    "labels": {
                        "nvidia.com/gpu.present": "true",
                        "nvidia.com/gpu.product": rnd.choice(MODELS),
                        "nvidia.com/gpu.memory": "81559",
                    },
                },
                "spec": {"unschedulable": i % 37 == 0},
                "status": {
                    "capacity": res,
                    "allocatable": res,
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
    pods = []
    for j in range(n_pods):
        gpu = {"nvidia.com/gpu": "1"} if j % 20 == 0 else {}
        pods.append(
            {
                "metadata": {"name": f"pod-{j}", "namespace": "ns"},
                "spec": {
                    "nodeName": f"node-{rnd.randrange(n_nodes):03d}",
                    "containers": [
                        {"name": "c", "resources": {"requests": {"cpu": "100m", **gpu}}}
                    ],
                    "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "1"}}}],
                },
                "status": {"phase": rnd.choice(["Running"] * 9 + ["Succeeded"])},
            }
        )
    return nodes, pods


def best_of(fn, runs: int = 15) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    nodes, pods = make_cluster()
    raw = json.dumps({"nodes": nodes, "pods": pods})
    base_min, base_med = best_of(lambda: json.loads(raw))
    inv_min, inv_med = best_of(lambda: inventory_from_objects(nodes, pods))
    inv = inventory_from_objects(nodes, pods)
    print(f"{len(nodes)} nodes, {len(pods)} pods, {inv.total} GPUs, {inv.free} free")
    print(f"json.loads baseline   min {base_min:6.1f} ms  median {base_med:6.1f} ms")
    print(f"inventory_from_objects min {inv_min:6.1f} ms  median {inv_med:6.1f} ms")
    print(f"ratio inventory/json.loads (median): {inv_med / base_med:.2f}x; goal <= 50 ms")


if __name__ == "__main__":
    main()
