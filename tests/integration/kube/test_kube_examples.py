"""Examples in the Kubernetes mode, on the emulator: the init container delivers the
environment's examples into the user's notebooks volume before the server starts,
from the examples claim the servers mount."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kube_support import HUB_IMAGE, LAB_IMAGE, NAMESPACE, Hub, Kube, start_hub, stop_hub
from test_kube_spawn import api, spawn_and_follow, wait_pod_gone

from tkhub.examples.repository import sync

SHIPPED = Path(__file__).resolve().parents[3] / "examples" / "notebooks"


@pytest.fixture(scope="module")
def examples_hub(kube: Kube) -> Iterator[Hub]:
    hub, proc = start_hub(kube, extra=f"c.TkKubeSpawner.examples_image = {HUB_IMAGE!r}\n")
    admin = {"Authorization": f"token {hub.tokens['admin']}"}
    entry = {"name": "sci", "display_name": "SciPy", "image": LAB_IMAGE, "gpu": "none",
             "examples": "scipy"}  # fmt: skip
    try:
        created = httpx.post(f"{hub.catalog_url}/api/v1/images", json=entry, headers=admin)
        assert created.status_code == 201, created.text
        yield hub
    finally:
        stop_hub(hub, proc)


def test_the_init_container_delivers_from_the_servers_examples_claim(kube, examples_hub):
    served = kube.root / "volumes" / NAMESPACE / "tkhub-examples"
    assert sync(served, shipped=SHIPPED).ok  # what the install Job does
    seconds, events = spawn_and_follow(examples_hub, "bob", {"image": "sci", "gpu": "none"})
    assert events and events[-1].get("ready"), events
    pod = kube.get("pods", "jupyter-bob")
    tools, init = pod["spec"]["initContainers"]  # the `tkhub` client, then the examples
    assert tools["name"] == "tkhub-tools" and tools["image"] == HUB_IMAGE
    assert (
        init["image"] == HUB_IMAGE
        and init["command"][init["command"].index("--folder") + 1] == "scipy"
    )
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}  # fmt: skip
    server_mounts = {m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    for mount in init["volumeMounts"]:  # the same volumes (claims) as the server's
        assert mount["name"] in server_mounts and mount["name"] in claims
    notebooks_mount = next(m for m in init["volumeMounts"] if m["name"] == "notebooks")
    assert notebooks_mount["subPath"] == "bob"  # KubeSpawner expanded {username}

    delivered = kube.root / "volumes" / NAMESPACE / "tkhub-notebooks" / "bob" / "examples"
    assert (delivered / "scipy" / "weather-analysis.ipynb").is_file()
    assert (delivered / "scipy" / "where-things-live.ipynb").is_file()  # common/
    assert (delivered / "scipy" / "data" / "weather.csv").is_file()
    with api(examples_hub) as client:
        assert client.delete("/users/bob/server").status_code in (202, 204)
    assert wait_pod_gone(kube, "jupyter-bob")
