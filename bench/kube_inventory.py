"""The spawn page's GPU inventory read from a real kube-apiserver with 50 GPU nodes.

What ``TkKubeSpawner.fetch_inventory`` does on every spawn-page visit
(``tkhub.kube.inventory.read_inventory``: list the nodes, list the live pods,
count), against a real control plane (``cluster/cluster.py``) holding 50 extra
kwok GPU nodes and one GPU pod on each, placed by the real kube-scheduler.
Baseline in the same run: the same two LIST requests alone (no counting), so the
ratio is what tkhub's accounting adds to the API round trips.

    .venv/bin/python bench/kube_inventory.py [--nodes 50] [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration" / "kube"))

from kubernetes_asyncio import client, config  # noqa: E402
from real_cluster import RealCluster, pod, start_cluster, stop_cluster  # noqa: E402

from tkhub.kube.inventory import LIVE_PODS, _list_json, read_inventory  # noqa: E402

MODELS = ("NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-40GB", "NVIDIA-L4", "Tesla-T4")


def gpu_node(index: int) -> dict:
    name = f"bench-gpu-{index:03d}"
    alloc = {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": "8"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"kubernetes.io/hostname": name, "type": "kwok",
                                    "nvidia.com/gpu.present": "true",
                                    "nvidia.com/gpu.product": MODELS[index % len(MODELS)],
                                    "nvidia.com/gpu.memory": "81559"}},
            "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present",
                                 "effect": "NoSchedule"}]},
            "status": {"allocatable": alloc, "capacity": dict(alloc)}}  # fmt: skip


def populate(cluster: RealCluster, nodes: int) -> None:
    cluster.apply(*(gpu_node(i) for i in range(nodes)))
    cluster.kubectl("wait", "node", "-l", "type=kwok", "--for=condition=Ready", "--timeout=120s")
    cluster.kubectl("create", "namespace", "bench")
    pods = []
    for i in range(nodes):
        p = pod(f"work-{i:03d}", limits={"nvidia.com/gpu": "2"}, node=f"bench-gpu-{i:03d}",
                gpu=True)  # fmt: skip
        p["metadata"]["namespace"] = "bench"
        pods.append(p)
    cluster.apply(*pods)
    cluster.kubectl("wait", "pod", "--all", "-n", "bench", "--for=condition=Ready",
                    "--timeout=180s")  # fmt: skip


async def measure(kubeconfig: Path, runs: int) -> tuple[list[float], list[float], int]:
    api = await config.new_client_from_config(config_file=str(kubeconfig))
    async with api:
        core = client.CoreV1Api(api)
        inventory = await read_inventory(core)  # warm the connection
        raw, ours = [], []
        for _ in range(runs):
            start = time.perf_counter()
            await _list_json(core.list_node)
            await _list_json(core.list_pod_for_all_namespaces, field_selector=LIVE_PODS)
            raw.append(time.perf_counter() - start)
            start = time.perf_counter()
            inventory = await read_inventory(core)
            ours.append(time.perf_counter() - start)
        return raw, ours, len(inventory.nodes)


def main(nodes: int, runs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="tkhub-bench-"))
    cluster = start_cluster(work / "cluster")
    try:
        populate(cluster, nodes)
        raw, ours, seen = asyncio.run(measure(cluster.kubeconfig, runs))
        listed = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    finally:
        stop_cluster(cluster)
    print(f"{len(listed)} nodes in the API ({seen} with GPUs), {nodes} GPU pods, {runs} runs")
    print(f"two LIST requests alone   median {statistics.median(raw) * 1000:7.1f} ms")
    print(f"read_inventory (tkhub)    median {statistics.median(ours) * 1000:7.1f} ms")
    print(f"ratio read_inventory/LIST alone (median): "
          f"{statistics.median(ours) / statistics.median(raw):.2f}x")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    main(args.nodes, args.runs)
