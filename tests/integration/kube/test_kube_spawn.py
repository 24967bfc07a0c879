"""Real hub -> TkKubeSpawner -> API emulator -> pod process: a server that really runs.

Kept on the emulator only because its fake kubelet runs the pod's command: the
fail-fast, placement and refusal tests run on the real control plane
(``test_cluster_spawn.py``); this one moves there when the cluster has a real node.

The pod's ``jupyterhub-singleuser`` runs as a local process on its own loopback
address; the hub reaches it through the proxy exactly as in a cluster.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from kube_support import LAB_IMAGE, NAMESPACE, Hub, Kube

from tkhub.kube.names import HOME


def api(hub: Hub, user: str = "admin") -> httpx.Client:
    return httpx.Client(
        base_url=hub.api_url, headers={"Authorization": f"token {hub.tokens[user]}"}, timeout=30
    )


def spawn_and_follow(
    hub: Hub, user: str, options: dict, limit: float = 90
) -> tuple[float, list[dict]]:
    """Request a server and read its progress to the end; (seconds, events).

    A spawn that fails within the hub's 10 s ``slow_spawn_timeout`` fails the POST
    itself, with the spawner's message: that is the user's answer then.
    """
    started = time.monotonic()
    with api(hub) as client:
        r = client.post(f"/users/{user}/server", json=options)
        if r.status_code >= 400:
            return time.monotonic() - started, [{"failed": True, **r.json()}]
        events = []
        with client.stream("GET", f"/users/{user}/server/progress", timeout=limit) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                    if events[-1].get("failed") or events[-1].get("ready"):
                        break
    return time.monotonic() - started, events


def wait_pod_gone(kube: Kube, name: str) -> bool:
    for _ in range(200):
        if kube.get("pods", name) is None:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def stop_servers(hub: Hub) -> Iterator[None]:
    yield
    with api(hub) as client:
        for user in ("alice", "bob", "carol"):
            client.delete(f"/users/{user}/server")


def pod_logs(kube: Kube) -> str:
    return "\n".join(
        p.read_text(errors="replace")[-3000:] for p in kube.root.glob("pods/*/*/log.txt")
    )


def test_cpu_spawn_reaches_jupyterlab(hub: Hub, kube: Kube, stop_servers):
    try:
        seconds, events = spawn_and_follow(hub, "alice", {"image": ["lab"], "gpu": ["none"]})
    finally:
        print(pod_logs(kube))
    assert events[-1].get("ready"), (events, hub.log()[-3000:])
    pod = kube.get("pods", "jupyter-alice")
    container = pod["spec"]["containers"][0]
    assert container["image"] == LAB_IMAGE
    assert pod["spec"]["nodeName"] in ("cpu-a", "cpu-b")
    assert container["resources"]["limits"] == {"cpu": 2.0, "memory": 4 * 2**30}
    assert "nvidia.com/gpu" not in container["resources"].get("requests", {})
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert HOME not in mounts
    assert mounts[f"{HOME}/thinkube/notebooks"]["subPath"] == "alice"
    ip = pod["status"]["podIP"]
    assert ip.startswith("127.0.") and ip != "127.0.0.1"

    # JupyterLab answers through the proxy, and the notebook volume is the user's own
    with httpx.Client(base_url=hub.url, timeout=30) as http:
        r = http.get(
            "/user/alice/api/contents", headers={"Authorization": f"token {hub.tokens['alice']}"}
        )
        assert r.status_code == 200, r.text
        # the root is ~/thinkube: the user's notebooks and the shared volumes side by side
        assert {"notebooks", "datasets", "models"} <= {i["name"] for i in r.json()["content"]}
        r = http.put(
            "/user/alice/api/contents/notebooks/hello.ipynb",
            json={
                "type": "notebook",
                "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
            },
            headers={"Authorization": f"token {hub.tokens['alice']}"},
        )
        assert r.status_code in (200, 201), r.text
        lab = http.get("/user/alice/lab", headers={"Authorization": f"token {hub.tokens['alice']}"})
        assert lab.status_code == 200 and "JupyterLab" in lab.text
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    assert env["JUPYTERHUB_ROOT_DIR"] == f"{HOME}/thinkube"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab/tree/notebooks"
    saved = kube.root / "volumes" / NAMESPACE / "tkhub-notebooks" / "alice" / "hello.ipynb"
    assert saved.exists()

    with api(hub) as client:
        assert client.delete("/users/alice/server").status_code in (202, 204)
    assert wait_pod_gone(kube, "jupyter-alice")
