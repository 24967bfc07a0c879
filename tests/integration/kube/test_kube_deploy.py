"""``tkhub deploy apply|verify|uninstall`` against the API emulator.

Kept on the emulator only for ``verify``, whose probe pods must really run (storage
written on one node and read on another, a GPU visible in a pod); preflight, plan,
apply, RBAC and uninstall run on the real apiserver in ``test_cluster_deploy.py``.

helm is replaced by a script first on PATH that records its arguments (the chart
itself is not installed: the test then creates the hub and proxy Deployments, the
chart's ``hub`` Secret and the ``proxy-public`` Service, pointing at a real hub).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kube_cluster import make_root, remove_root
from kube_support import BUSYBOX, CUDA, HUB_IMAGE, Hub, Kube, start_hub, stop_hub
from rich.console import Console
from typer.testing import CliRunner

from tkhub.cli import app
from tkhub.cli import deploy as deploy_cli
from tkhub.kube.names import Names

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """One table row per line, so a check's message is matched whole."""
    monkeypatch.setattr(deploy_cli, "out", Console(width=250))
    monkeypatch.setattr(deploy_cli, "err", Console(width=250, stderr=True))


@pytest.fixture(scope="module")
def deploy_hub(kube: Kube) -> Iterator[Hub]:
    """A real hub and catalog standing in for the chart's (any spawner will do)."""
    hub, proc = start_hub(kube, extra='c.JupyterHub.spawner_class = "simple"')
    try:
        yield hub
    finally:
        stop_hub(hub, proc)


@pytest.fixture
def workdir() -> Iterator[Path]:
    root = make_root()
    yield root
    remove_root(root)


def write_config(path: Path, namespace: str, storage_class: str = "rwx", **extra: object) -> Path:
    config = {
        "namespace": namespace,
        "domain": "jupyter.example.org",
        "keycloak": {"issuer": "https://auth.example.org/realms/thinkube"},
        "storage": {"class": storage_class, **extra},
        "verify_image": BUSYBOX,
        "gpu": {"verify_image": CUDA},
        "hub": {"image": HUB_IMAGE},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for_job(kube: Kube, name: str, namespace: str) -> dict:
    for _ in range(600):
        job = kube.get("jobs", name, namespace) or {}
        if (job.get("status") or {}).get("conditions"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {name} did not finish")


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["deploy", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def add_oidc_secret(kube: Kube, namespace: str) -> None:
    kube.put("namespaces", {"metadata": {"name": namespace}})
    value = base64.b64encode(b"s3cret").decode()
    kube.put(
        "secrets",
        {
            "metadata": {"name": "tkhub-oidc", "namespace": namespace},
            "data": {"client-secret": value},
        },
    )


def wait_for_phase(kube: Kube, pvc: str, namespace: str) -> str:
    """The emulated provisioner binds a moment after creation, as a real one does."""
    for _ in range(100):
        phase = (
            (kube.get("persistentvolumeclaims", pvc, namespace) or {}).get("status") or {}
        ).get("phase", "")
        if phase == "Bound":
            break
        time.sleep(0.05)
    return phase


def stand_in_for_chart(kube: Kube, hub: Hub, namespace: str) -> None:
    """What ``helm install`` would create, with the real hub behind proxy-public."""
    names = Names(namespace)
    for name in (names.hub_deployment, names.proxy_deployment):
        kube.put(
            "deployments",
            {"metadata": {"name": name, "namespace": namespace}, "spec": {"replicas": 1}},
        )
    token = base64.b64encode(hub.service_token.encode()).decode()
    kube.put(
        "secrets",
        {
            "metadata": {"name": names.hub_secret, "namespace": namespace},
            "data": {"hub.services.catalog.apiToken": token},
        },
    )
    kube.put("services", {"metadata": {"name": names.proxy_public_service, "namespace": namespace}})
    for _ in range(100):  # the emulated controller reports them ready a moment later
        deployments = [kube.get("deployments", n, namespace) for n in ("hub", "proxy")]
        if all((d.get("status") or {}).get("readyReplicas") for d in deployments):
            break
        time.sleep(0.05)
    kube.emulator.service_backends[(namespace, names.proxy_public_service)] = hub.url
    kube.emulator.service_backends[(namespace, names.catalog)] = hub.catalog_url


GATEWAY = {
    "name": "LLM gateway",
    "env": {"OPENAI_BASE_URL": "http://gw:4000/v1"},
    "secrets": {"OPENAI_API_KEY": {"name": "tkhub-llm-gateway", "key": "api-key"}},
}


def with_services(config: Path, *services: dict) -> Path:
    raw = yaml.safe_load(config.read_text())
    raw["services"] = list(services)
    config.write_text(yaml.safe_dump(raw))
    return config


def test_apply_verify_uninstall(kube: Kube, deploy_hub: Hub, workdir: Path, fake_helm: Path):
    namespace = "tkhub-ops"
    names = Names(namespace)
    config = write_config(workdir / "c.yaml", namespace)
    kubeconfig = ("--kubeconfig", str(kube.kubeconfig))
    add_oidc_secret(kube, namespace)
    out_dir = workdir / "out"

    code, output = cli("apply", "-f", str(config), "-o", str(out_dir), *kubeconfig)
    assert code == 0, output
    assert "applied Deployment tkhub-ops/tkhub-catalog" in output
    assert "helm: Release ready (fake helm)" in output
    helm_args = fake_helm.read_text().split()
    assert helm_args[:4] == ["upgrade", "--install", "tkhub", "jupyterhub"]
    assert helm_args[helm_args.index("--values") + 1] == str(out_dir / "values.yaml")
    assert helm_args[helm_args.index("--namespace") + 1] == namespace
    for key in ("notebooks", "datasets", "models", "examples"):
        assert wait_for_phase(kube, names.pvc(key), namespace) == "Bound"
    assert kube.get("clusterroles", names.inventory_cluster_role, "") is not None
    # the install Job synced the examples into the very claim the servers mount
    job = wait_for_job(kube, names.examples_sync, namespace)
    assert job["status"].get("succeeded") == 1, job
    served = kube.root / "volumes" / namespace / names.pvc("examples") / "current"
    assert (served / "common" / "where-things-live.ipynb").is_file()
    assert kube.get("cronjobs", names.examples_sync, namespace)["spec"]["schedule"]

    # applying again is an update, not a conflict
    code, output = cli("apply", "-f", str(config), "-o", str(out_dir), *kubeconfig)
    assert code == 0, output

    stand_in_for_chart(kube, deploy_hub, namespace)
    code, output = cli("verify", "-f", str(config), *kubeconfig)
    logs = "\n".join(p.read_text()[-800:] for p in (kube.root / "pods").rglob("log.txt")
                     if "examples" in str(p))  # fmt: skip
    assert code == 0, output + logs
    assert "FAIL" not in output
    assert "written on cpu-a, read back on cpu-b" in output
    assert "gpu-1: GPU 0: NVIDIA H100" in output
    assert "/hub/login answers 200" in output
    assert "image(s)" in output
    assert "the servers' examples volume holds the examples" in output
    # probe pods are gone (a Job's pod stays, as the Job's own record)
    pods = kube.emulator.store.list("pods", namespace)
    assert not [p for p in pods if "job-name" not in p["metadata"].get("labels", {})]

    users_job = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "n", "image": BUSYBOX}]}}},
        "metadata": {"name": "tkhub-job-1", "namespace": namespace,
                     "labels": {"component": "tkhub-job"}}}  # fmt: skip
    kube.put("jobs", users_job)
    code, output = cli("uninstall", "-f", str(config), *kubeconfig)
    assert code == 0, output
    assert "deleted Job tkhub-job-1 (a user's job)" in output
    assert kube.get("jobs", "tkhub-job-1", namespace) is None
    assert (
        fake_helm.read_text().splitlines()[-1].startswith("uninstall tkhub --namespace tkhub-ops")
    )
    assert kube.get("deployments", names.catalog, namespace) is None
    assert kube.get("clusterroles", names.inventory_cluster_role, "") is None
    for pvc in names.data_pvcs:
        assert kube.get("persistentvolumeclaims", pvc, namespace) is not None, pvc
    assert "kept (user data" in output

    code, output = cli("uninstall", "-f", str(config), "--delete-data", *kubeconfig)
    assert code == 0, output
    assert kube.get("namespaces", namespace, "") is None
    assert not kube.emulator.store.list("persistentvolumeclaims", namespace)


def test_verify_catches_storage_that_does_not_share_between_nodes(
    kube: Kube, deploy_hub: Hub, workdir: Path, fake_helm: Path
):
    namespace = "tkhub-badrwx"
    config = write_config(
        workdir / "c.yaml", namespace, storage_class="node-local", assume_rwx=True
    )
    kubeconfig = ("--kubeconfig", str(kube.kubeconfig))
    add_oidc_secret(kube, namespace)
    code, output = cli("apply", "-f", str(config), "-o", str(workdir / "out"), *kubeconfig)
    assert code == 0, output
    stand_in_for_chart(kube, deploy_hub, namespace)
    code, output = cli("verify", "-f", str(config), *kubeconfig)
    assert code == 1, output
    assert "not visible on cpu-b" in output and "node-local does not share" in output.replace(
        "\n", " "
    )
    cli("uninstall", "-f", str(config), "--delete-data", *kubeconfig)
