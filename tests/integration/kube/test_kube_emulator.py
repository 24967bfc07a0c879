"""The emulator answers as a real API server where tkhub's and KubeSpawner's code
depend on it: credentials, the status of a new pod."""

from __future__ import annotations

import httpx
from kube_emulator import ADMIN_TOKEN
from kube_support import BROKEN_IMAGE, NAMESPACE, Kube


def api(kube: Kube, token: str = ADMIN_TOKEN) -> httpx.Client:
    return httpx.Client(base_url=kube.url, headers={"Authorization": f"Bearer {token}"})


def test_a_new_pod_has_a_pending_status_from_its_creation(kube: Kube):
    """KubeSpawner reads pod["status"]["phase"] from its first watch event; a pod
    stored without a status made a spawn end in a 500 when the event came first."""
    pod = {"metadata": {"name": "status-check"},
           "spec": {"containers": [{"name": "c", "image": BROKEN_IMAGE}]}}  # fmt: skip
    with api(kube) as client:
        created = client.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=pod)
        try:
            assert created.status_code == 201, created.text
            assert created.json()["status"]["phase"] == "Pending"
        finally:
            client.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/status-check")


def test_requests_without_the_token_are_refused(kube: Kube):
    with api(kube, token="wrong") as client:
        assert client.get("/api/v1/nodes").status_code == 401
    with httpx.Client(base_url=kube.url) as anonymous:
        assert anonymous.get("/api/v1/nodes").status_code == 401
