"""Real hub -> TkKubeSpawner -> real kube-apiserver and kube-scheduler, kwok nodes.

The pods the hub's spawner builds are admitted by the real apiserver and placed by
the real scheduler; kwok gives them their lifecycle (Running, or ErrImagePull for
an image from ``missing.invalid``). No container runs here: a placed server never
answers, so these tests read placement and failures, then stop the server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kube_support import BROKEN_IMAGE, LAB_IMAGE, Hub, seed_catalog, start_hub, stop_hub
from real_cluster import RealCluster
from test_kube_spawn import api, spawn_and_follow

from tkhub.kube.names import HOME, SHARED_VOLUMES, Names

EXTRA = """
c.KubeSpawner.k8s_api_request_retry_timeout = 10
c.KubeSpawner.k8s_api_request_timeout = 3
"""


def volumes(namespace: str) -> list[dict[str, Any]]:
    """The shared claims the servers mount, bound by the real PV controller to
    static volumes (no container runs, so nothing is mounted)."""
    objects = []
    for v in SHARED_VOLUMES:
        claim = Names(namespace).pvc(v.key)
        pv = f"{namespace}-{v.key}"
        objects += [
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
             "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                      "hostPath": {"path": f"/nonexistent/{pv}"}, "storageClassName": "",
                      "claimRef": {"namespace": namespace, "name": claim}}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": claim, "namespace": namespace},
             "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "",
                      "volumeName": pv, "resources": {"requests": {"storage": "1Gi"}}}},
        ]  # fmt: skip
    return objects


class ClusterHub:
    def __init__(self, hub: Hub, cluster: RealCluster, namespace: str) -> None:
        self.hub, self.cluster, self.namespace = hub, cluster, namespace

    def pod(self, user: str) -> dict[str, Any] | None:
        return self.cluster.pod(self.namespace, f"jupyter-{user}")

    def placed(self, user: str) -> dict[str, Any]:
        return dict(self.cluster.wait_for(
            f"{user}'s pod to be placed",
            lambda: (p := self.pod(user)) and p["spec"].get("nodeName") and p,
        ))  # fmt: skip

    def stop(self, user: str) -> None:
        with api(self.hub) as client:
            client.delete(f"/users/{user}/server")
        self.cluster.wait_for(f"{user}'s pod to go", lambda: self.pod(user) is None, 60)


@pytest.fixture(scope="module")
def cluster_hub(cluster: RealCluster) -> Iterator[ClusterHub]:
    with cluster.namespace("hub") as namespace:
        cluster.apply(*volumes(namespace))
        cluster.kubectl("wait", "pvc", "--all", "-n", namespace, "--timeout=60s",
                        "--for=jsonpath={.status.phase}=Bound")  # fmt: skip
        hub, proc = start_hub(cluster, extra=EXTRA, namespace=namespace)
        try:
            seed_catalog(hub, ({"name": "big", "display_name": "Big", "image": LAB_IMAGE,
                                "gpu": "none", "resources": {"cpu_guarantee": "64",
                                                            "cpu_limit": "64"}},))  # fmt: skip
            yield ClusterHub(hub, cluster, namespace)
        finally:
            stop_hub(hub, proc)
            for v in SHARED_VOLUMES:
                cluster.kubectl("delete", "pv", f"{namespace}-{v.key}", "--wait=false",
                                check=False)  # fmt: skip


def start_in_background(hub: Hub, user: str, options: dict[str, list[str]]) -> None:
    with api(hub) as client:
        r = client.post(f"/users/{user}/server", json=options)
    assert r.status_code in (201, 202), r.text


def test_a_cpu_server_pod_is_admitted_and_placed_on_a_cpu_node(cluster_hub: ClusterHub):
    start_in_background(cluster_hub.hub, "alice", {"image": ["lab"], "gpu": ["none"]})
    try:
        pod = cluster_hub.placed("alice")
        assert pod["spec"]["nodeName"] in ("cpu-1", "cpu-2")
        container = pod["spec"]["containers"][0]
        assert container["image"] == LAB_IMAGE
        # what the real apiserver stored: quantities as it normalises them
        assert container["resources"]["limits"] == {"cpu": "2", "memory": str(4 * 2**30)}
        assert "nvidia.com/gpu" not in container["resources"].get("requests", {})
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert HOME not in mounts
        assert mounts[f"{HOME}/thinkube/notebooks"]["subPath"] == "alice"
        claims = {v["persistentVolumeClaim"]["claimName"]
                  for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}  # fmt: skip
        assert Names(cluster_hub.namespace).pvc("notebooks") in claims
        assert pod["status"]["phase"] == "Running" or cluster_hub.cluster.wait_for(
            "Running", lambda: (cluster_hub.pod("alice") or {}).get("status", {}).get("phase")
            == "Running")  # fmt: skip
    finally:
        cluster_hub.stop("alice")


def test_bad_image_fails_fast_with_the_pull_reason(cluster_hub: ClusterHub):
    seconds, events = spawn_and_follow(cluster_hub.hub, "bob", {"image": ["broken"]})
    last = events[-1]
    assert last.get("failed"), events
    assert "could not be pulled" in last["message"] and BROKEN_IMAGE in last["message"]
    assert "ErrImagePull" in last["message"]
    assert seconds < 15, f"took {seconds:.1f} s"
    cluster_hub.cluster.wait_for("bob's pod to go", lambda: cluster_hub.pod("bob") is None)


def test_a_server_asking_more_cpu_than_any_node_has_fails_fast(cluster_hub: ClusterHub):
    """Seen only on the real scheduler: tkhub's GPU count cannot see CPU shortage."""
    seconds, events = spawn_and_follow(cluster_hub.hub, "carol", {"image": ["big"]})
    last = events[-1]
    assert last.get("failed"), events
    assert "FailedScheduling" in last["message"] and "Insufficient cpu" in last["message"]
    assert seconds < 20, f"took {seconds:.1f} s"
    cluster_hub.cluster.wait_for("carol's pod to go", lambda: cluster_hub.pod("carol") is None)


@pytest.mark.parametrize(
    ("gpu", "nodes", "resource"),
    [
        ("model:NVIDIA-L4", {"gpu-l4"}, "nvidia.com/gpu"),
        ("node:gpu-h100", {"gpu-h100"}, "nvidia.com/gpu"),
        ("any", {"gpu-h100", "gpu-l4"}, "nvidia.com/gpu"),  # never the cordoned node
        ("model:NVIDIA-A100-SXM4-40GB MIG 1g.5gb", {"gpu-mig"}, "nvidia.com/mig-1g.5gb"),
    ],
)
def test_gpu_placements_land_where_the_scheduler_puts_them(
    cluster_hub: ClusterHub, gpu: str, nodes: set[str], resource: str
):
    start_in_background(cluster_hub.hub, "alice", {"image": ["gpu-lab"], "gpu": [gpu]})
    try:
        pod = cluster_hub.placed("alice")
        assert pod["spec"]["nodeName"] in nodes
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert limits[resource] == "1"
        assert any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NoSchedule"
                   for t in pod["spec"]["tolerations"])  # fmt: skip
    finally:
        cluster_hub.stop("alice")


def test_unknown_image_is_refused_before_any_pod(cluster_hub: ClusterHub):
    seconds, events = spawn_and_follow(cluster_hub.hub, "bob", {"image": ["no-such-thing"]})
    assert events[-1].get("failed") and "no-such-thing" in events[-1]["message"]
    assert cluster_hub.pod("bob") is None


def test_apiserver_down_during_a_spawn_fails_it_clearly_and_the_hub_stays_up(
    cluster_hub: ClusterHub,
):
    cluster = cluster_hub.cluster
    cluster.component("stop", "kube-apiserver")
    try:
        seconds, events = spawn_and_follow(cluster_hub.hub, "bob", {"image": ["lab"]}, limit=60)
        assert events[-1].get("failed"), events
        assert seconds < 15, f"took {seconds:.1f} s: {events}"
        print(f"the user saw, after {seconds:.1f} s: {events[-1]['message']}")
        with httpx.Client(timeout=5) as http:  # the hub keeps serving
            r = http.get(f"{cluster_hub.hub.api_url}/", headers={
                "Authorization": f"token {cluster_hub.hub.tokens['admin']}"})  # fmt: skip
            assert r.status_code == 200
    finally:
        cluster.component("start", "kube-apiserver")
    with api(cluster_hub.hub) as client:
        client.delete("/users/bob/server")
    time.sleep(1)
    start_in_background(cluster_hub.hub, "bob", {"image": ["lab"], "gpu": ["none"]})
    try:
        assert cluster_hub.placed("bob")["spec"]["nodeName"] in ("cpu-1", "cpu-2")
    finally:
        cluster_hub.stop("bob")
