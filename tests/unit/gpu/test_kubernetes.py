"""Cluster inventory from Node and Pod JSON."""

from __future__ import annotations

from tkhub.gpu.kubernetes import inventory_from_objects, pod_gpu_requests


def by_name(inv):
    return {n.name: n for n in inv.nodes}


def test_counts_free_gpus_per_node(cluster):
    inv = inventory_from_objects(*cluster)
    nodes = by_name(inv)
    assert "cpu-1" not in nodes
    a = nodes["node-a"]
    assert (a.total, a.free, a.schedulable) == (4, 1, True)  # GPU taint is tolerated
    assert a.pools[0].model == "NVIDIA-H100-80GB-HBM3"
    assert a.pools[0].memory_mib == 81559
    assert (nodes["node-b"].total, nodes["node-b"].free) == (2, 0)


def test_mig_profiles_are_separate_pools(cluster):
    mig = by_name(inventory_from_objects(*cluster))["node-mig"]
    pools = {p.resource: p for p in mig.pools}
    assert pools["nvidia.com/mig-1g.5gb"].free == 4
    assert pools["nvidia.com/mig-1g.5gb"].model == "NVIDIA-A100-SXM4-40GB MIG 1g.5gb"
    assert pools["nvidia.com/mig-3g.20gb"].free == 2


def test_time_slicing_replicas(cluster):
    t4 = by_name(inventory_from_objects(*cluster))["node-t4"]
    assert t4.pools[0].shared_replicas == 4
    assert (t4.total, t4.free) == (8, 7)


def test_unschedulable_nodes_say_why(cluster):
    nodes = by_name(inventory_from_objects(*cluster))
    assert nodes["node-l4"].reason == "cordoned"
    assert nodes["node-down"].reason == "not ready"
    assert nodes["node-gpu-maint"].reason == "tainted maintenance=true:NoSchedule"
    for name in ("node-l4", "node-down", "node-gpu-maint"):
        assert not nodes[name].schedulable and nodes[name].free == 0


def test_init_containers_effective_request(make_pod):
    pod = make_pod
    init = [
        {"name": "warm", "resources": {"limits": {"nvidia.com/gpu": "3"}}},
        {"name": "small", "resources": {"requests": {"nvidia.com/gpu": "1"}}},
    ]
    p = pod("x", "n", requests={"nvidia.com/gpu": "1"}, init=init)
    assert pod_gpu_requests(p) == {"nvidia.com/gpu": 3}
    sidecar = [
        {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"nvidia.com/gpu": "1"}}}
    ]
    assert pod_gpu_requests(pod("y", "n", requests={"nvidia.com/gpu": "1"}, init=sidecar)) == {
        "nvidia.com/gpu": 2
    }


def test_empty_cluster_and_to_dict(cluster):
    assert inventory_from_objects([], []).note == "no GPU nodes in the cluster"
    body = inventory_from_objects(*cluster).to_dict()
    assert body["mode"] == "kubernetes"
    assert body["total"] == 4 + 2 + 9 + 8 + 1 + 1 + 2
    assert body["free"] == 1 + 0 + 6 + 7


def test_garbage_quantities_count_as_zero():
    nodes = [
        {"metadata": {"name": "odd"}, "status": {"allocatable": {"nvidia.com/gpu": "lots"}}},
    ]
    assert inventory_from_objects(nodes, []).nodes == ()


def test_the_drivers_cuda_from_feature_discovery_labels():
    def node(name, labels):
        return {"metadata": {"name": name, "labels": {"nvidia.com/gpu.present": "true", **labels}},
                "status": {"allocatable": {"nvidia.com/gpu": "1"}}}  # fmt: skip

    nodes = by_name(inventory_from_objects([
        node("new-gfd", {"nvidia.com/cuda.runtime-version.major": "13",
                         "nvidia.com/cuda.runtime-version.minor": "0"}),
        node("old-gfd", {"nvidia.com/cuda.runtime.major": "12",
                         "nvidia.com/cuda.runtime.minor": "4"}),
        node("no-gfd", {}),
    ], []))  # fmt: skip
    assert nodes["new-gfd"].cuda_driver == "13.0"
    assert nodes["old-gfd"].cuda_driver == "12.4"
    assert nodes["no-gfd"].cuda_driver is None
