"""``tkhub deploy preflight|plan|apply|uninstall`` and RBAC against the real kube-apiserver.

The objects tkhub applies itself go through the real apiserver's validation,
defaulting, admission and RBAC; the examples-sync Job is finished by the real
Job controller (its pod's run by kwok). The chart step still runs the recording
``helm`` stand-in: the Zero to JupyterHub chart cannot be fetched here. ``verify``
needs containers that really run (storage written on one node, read on another)
and stays with ``test_kube_deploy.py`` until the cluster has a real node.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from real_cluster import RealCluster
from test_kube_deploy import GATEWAY, cli, wide_output, with_services, write_config

import tkhub.kube.deploy.apply
from tkhub.kube.names import Names

__all__ = ["wide_output"]  # the autouse fixture, one table row per line


@pytest.fixture(scope="module")
def rwx_class(cluster: RealCluster) -> Iterator[str]:
    """A storage class named for a real RWX provisioner (none runs: claims stay Pending)."""
    name = "rwx"
    cluster.apply({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                   "metadata": {"name": name}, "provisioner": "nfs.csi.k8s.io"})  # fmt: skip
    yield name
    cluster.kubectl("delete", "storageclass", name, check=False)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def namespace(cluster: RealCluster) -> Iterator[str]:
    """A namespace name for tkhub itself to create; deleted after the test."""
    name = f"tk-{uuid.uuid4().hex[:8]}"
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    cluster.kubectl("delete", "pv", "-l", f"tkhub-test-namespace={name}", "--wait=false",
                    check=False)  # fmt: skip


def volumes_for(cluster: RealCluster, namespace: str, storage_class: str) -> None:
    """Volumes the real PV controller binds to tkhub's claims when apply makes them
    (no provisioner runs here; nothing is mounted, since no container runs)."""
    for claim in Names(namespace).data_pvcs:
        cluster.apply({"apiVersion": "v1", "kind": "PersistentVolume",
                       "metadata": {"name": f"{namespace}-{claim}",
                                    "labels": {"tkhub-test-namespace": namespace}},
                       "spec": {"capacity": {"storage": "1Ti"}, "storageClassName": storage_class,
                                "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                                "hostPath": {"path": f"/nonexistent/{claim}"},
                                "claimRef": {"namespace": namespace, "name": claim}}})  # fmt: skip


def oidc_secret(cluster: RealCluster, namespace: str) -> None:
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("create", "secret", "generic", "tkhub-oidc", "-n", namespace,
                    "--from-literal=client-secret=s3cret")  # fmt: skip


def token_kubeconfig(cluster: RealCluster, namespace: str, account: str, path: Path) -> Path:
    token = cluster.kubectl("create", "token", account, "-n", namespace).stdout.strip()
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": cluster.url, "certificate-authority": str(cluster.root / "pki/ca.crt")}}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "c", "user": account,
                                                   "namespace": namespace}}],
        "current-context": account,
    }))  # fmt: skip
    return path


def kubeconfig_of(cluster: RealCluster) -> tuple[str, str]:
    return ("--kubeconfig", str(cluster.kubeconfig))


def test_preflight_names_what_is_missing(cluster: RealCluster, workdir: Path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no helm
    config = write_config(workdir / "c.yaml", "tkhub-pre", storage_class="missing-class")
    with_services(config, GATEWAY)
    code, output = cli("preflight", "-f", str(config), *kubeconfig_of(cluster))
    assert code == 1
    assert "Kubernetes v1.34" in output
    assert "storage class 'missing-class' does not exist" in output
    assert "create secret generic tkhub-oidc" in output
    assert "service LLM gateway: OPENAI_API_KEY" in output
    assert "helm is not on PATH" in output
    assert "GPU nodes" in output and "gpu-h100" in output


def test_preflight_checks_the_kueue_queue_in_the_real_kueue(
    cluster: RealCluster, ns: str, workdir: Path
):
    config = write_config(workdir / "c.yaml", ns)
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "jobs": {"kueue_queue": "gpu-jobs"}}))
    code, output = cli("preflight", "-f", str(config), *kubeconfig_of(cluster))
    assert code == 1
    assert f"LocalQueue {ns}/gpu-jobs does not exist" in " ".join(output.split())
    cluster.apply({"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
                   "metadata": {"name": "gpu-jobs", "namespace": ns},
                   "spec": {"clusterQueue": "gpus"}})  # fmt: skip
    _, output = cli("preflight", "-f", str(config), *kubeconfig_of(cluster))
    flat = " ".join(output.split())
    assert "gpu-jobs does not exist" not in flat and f"LocalQueue {ns}/gpu-jobs" in flat


def test_preflight_with_an_exec_plugin_uses_the_contexts_namespace(
    cluster: RealCluster, ns: str, workdir: Path
):
    """A kubeconfig with no token: an exec credential plugin prints one (as on EKS/GKE);
    here a real service-account token the apiserver signed."""
    cluster.kubectl("create", "serviceaccount", "deployer", "-n", ns)
    cluster.kubectl("create", "clusterrolebinding", f"{ns}-deployer", "--clusterrole=cluster-admin",
                    f"--serviceaccount={ns}:deployer")  # fmt: skip
    try:
        token = cluster.kubectl("create", "token", "deployer", "-n", ns).stdout.strip()
        credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                      "status": {"token": token}}  # fmt: skip
        plugin = workdir / "get-token"
        plugin.write_text(f"#!/bin/sh\nprintf '%s' '{json.dumps(credential)}'\n")
        plugin.chmod(0o755)
        kubeconfig = workdir / "exec-kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "clusters": [{"name": "real", "cluster": {
                "server": cluster.url, "certificate-authority": str(cluster.root / "pki/ca.crt")}}],
            "users": [{"name": "sso", "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                "interactiveMode": "Never"}}}],
            "contexts": [{"name": "team", "context": {
                "cluster": "real", "user": "sso", "namespace": ns}}],
            "current-context": "team",
        }))  # fmt: skip
        config = write_config(workdir / "c.yaml", "unused")
        raw = yaml.safe_load(config.read_text())
        del raw["namespace"]  # the context's namespace applies, as with kubectl and helm
        config.write_text(yaml.safe_dump(raw))
        cluster.kubectl("create", "secret", "generic", "tkhub-oidc", "-n", ns,
                        "--from-literal=client-secret=s3cret")  # fmt: skip
        code, output = cli("preflight", "-f", str(config), "--kubeconfig", str(kubeconfig))
        assert "Kubernetes v1.34" in output, output
        assert "tkhub-oidc" in output and "create secret generic" not in output, output
    finally:
        cluster.kubectl("delete", "clusterrolebinding", f"{ns}-deployer", check=False)


def test_a_token_the_apiserver_did_not_sign_is_refused(cluster: RealCluster, workdir: Path):
    config = write_config(workdir / "c.yaml", "tkhub-anon")
    forged = workdir / "forged"
    forged.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": cluster.url, "certificate-authority": str(cluster.root / "pki/ca.crt")}}],
        "users": [{"name": "u", "user": {"token": "not-a-token"}}],
        "contexts": [{"name": "u", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "u",
    }))  # fmt: skip
    code, output = cli("preflight", "-f", str(config), "--kubeconfig", str(forged))
    assert code == 1
    assert "401" in output or "Unauthorized" in output, output


def test_apply_stops_at_preflight_and_changes_nothing(
    cluster: RealCluster, namespace: str, workdir: Path, fake_helm: Path, rwx_class: str
):
    config = write_config(workdir / "c.yaml", namespace)  # no tkhub-oidc secret
    code, output = cli("apply", "-f", str(config), "-o", str(workdir / "out"),
                       *kubeconfig_of(cluster))  # fmt: skip
    assert code == 1 and "nothing was changed" in output
    assert cluster.get(f"/api/v1/namespaces/{namespace}") is None
    assert not fake_helm.exists()


def bad_deployment(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "broken", "namespace": namespace},
            "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]}}}}  # fmt: skip


def test_a_manifest_the_apiserver_rejects_stops_apply_before_anything_is_written(
    cluster: RealCluster, namespace: str, workdir: Path, fake_helm: Path, rwx_class: str,
    monkeypatch,
):  # fmt: skip
    oidc_secret(cluster, namespace)
    rendered = tkhub.kube.deploy.apply.render_manifests
    monkeypatch.setattr(tkhub.kube.deploy.apply, "render_manifests",
                        lambda cfg: [*rendered(cfg), bad_deployment(namespace)])  # fmt: skip
    config = write_config(workdir / "c.yaml", namespace)
    code, output = cli("apply", "-f", str(config), "-o", str(workdir / "out"),
                       *kubeconfig_of(cluster))  # fmt: skip
    assert code == 1, output
    flat = " ".join(output.split())
    assert f"rejected Deployment {namespace}/broken" in flat
    assert "spec.replicas: Invalid value: -1" in flat  # the apiserver's own words
    assert "nothing was changed" in flat
    names = Names(namespace)
    assert cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{names.catalog}") is None
    assert not cluster.items(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
    assert not fake_helm.exists()


def test_plan_apply_rbac_uninstall_on_the_real_apiserver(
    cluster: RealCluster, namespace: str, workdir: Path, fake_helm: Path, rwx_class: str
):
    names = Names(namespace)
    config = write_config(workdir / "c.yaml", namespace)
    oidc_secret(cluster, namespace)
    volumes_for(cluster, namespace, rwx_class)

    code, output = cli("plan", "-f", str(config), *kubeconfig_of(cluster))
    assert code == 0, output
    assert f"Deployment {namespace}/{names.catalog}: create" in output
    assert "rejected" not in output

    code, output = cli("apply", "-f", str(config), "-o", str(workdir / "out"),
                       *kubeconfig_of(cluster))  # fmt: skip
    assert code == 0, output
    assert "the API server accepts all" in output
    assert f"applied Deployment {namespace}/{names.catalog}" in output
    assert cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{names.catalog}")
    # the examples sync Job was finished by the real Job controller
    cluster.kubectl("wait", f"job/{names.examples_sync}", "-n", namespace,
                    "--for=condition=Complete", "--timeout=60s")  # fmt: skip

    code, output = cli("plan", "-f", str(config), *kubeconfig_of(cluster))
    assert code == 0 and f"Deployment {namespace}/{names.catalog}: unchanged" in output, output

    # RBAC as the real apiserver enforces it, with the jobs service's own token
    as_jobs = token_kubeconfig(cluster, namespace, names.jobs, workdir / "jobs.kubeconfig")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "rbac-check", "namespace": namespace},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}
            }
        },
    }
    allowed = cluster.kubectl("create", "-f", "-", input=json.dumps(job), kubeconfig=as_jobs,
                              check=False)  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert cluster.kubectl("get", "nodes", kubeconfig=as_jobs, check=False).returncode == 0
    refused = cluster.kubectl("delete", "pods", "--all", "-n", namespace, kubeconfig=as_jobs,
                              check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "Forbidden" in refused.stderr and f"system:serviceaccount:{namespace}:{names.jobs}" \
        in refused.stderr and 'cannot delete resource "pods"' in refused.stderr  # fmt: skip
    secrets = cluster.kubectl("get", "secrets", "-n", namespace, kubeconfig=as_jobs, check=False)
    assert secrets.returncode != 0 and "Forbidden" in secrets.stderr

    code, output = cli("uninstall", "-f", str(config), *kubeconfig_of(cluster))
    assert code == 0, output
    assert cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{names.catalog}") is None
    path = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{names.inventory_cluster_role}"
    assert cluster.get(path) is None
    for pvc in names.data_pvcs:
        assert cluster.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{pvc}"), pvc
    code, output = cli("uninstall", "-f", str(config), "--delete-data", *kubeconfig_of(cluster))
    assert code == 0, output
    gone = lambda: cluster.get(f"/api/v1/namespaces/{namespace}") is None  # noqa: E731
    cluster.wait_for("the namespace to go", gone, 90)
