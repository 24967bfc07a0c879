"""Fixtures for the kubernetes-mode integration tests.

What runs where:
- On the real control plane (``cluster``: etcd, kube-apiserver, controller-manager,
  kube-scheduler, kwok nodes, Kueue; ``test_cluster_*.py``): GPU accounting against
  the scheduler, pod status as the scheduler and kwok write it, spawns (placement,
  fail fast, apiserver down), deploy preflight/plan/apply/uninstall and RBAC, the
  registry preflight, GPU jobs through Kueue.
- On the API emulator (``kube``; ``test_kube_*.py``), only what needs a container
  that really runs, until the cluster has a real node: JupyterLab served from a pod,
  the examples init container, jobs that run papermill, ``deploy verify``'s probes.

- ``kube``: a Kubernetes API emulator (``emulator.py``) on 127.0.0.1 and a free
  port, with the emulated cluster (``cluster.py``: scheduler, image check, fake
  kubelet giving each pod its own 127.0.x.y address) and three nodes: ``cpu-a``,
  ``cpu-b`` and ``gpu-1`` (two H100, tainted ``nvidia.com/gpu``); storage classes
  ``rwx`` (one directory for all nodes) and ``node-local`` (a copy per node);
  namespace ``tkhub``. ``kube.kubeconfig`` points at it. Everything is removed
  after the test module.
- ``hub``: a real JupyterHub + configurable-http-proxy whose spawner is
  ``TkKubeSpawner`` talking to ``kube``, with the real catalog as a managed
  service (entries ``lab`` -> an image the cluster can pull, ``broken`` -> one
  it cannot, ``gpu-lab`` -> GPU required); users ``alice`` and ``admin`` with tokens.
- ``cluster`` (session): a real control plane started by ``cluster/cluster.py``
  (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with the fake
  nodes of ``cluster/nodes.yaml``, Kueue), in a temporary directory, stopped and
  removed after the session; ``real_cluster.RealCluster``.
- ``ns``: a namespace of its own for one test on ``cluster``, deleted after it.
- ``fake_helm``: a ``helm`` script first on PATH that records its arguments.
- ``registry``: Debian's ``docker-registry`` on 127.0.0.1 and a free port with
  htpasswd (basic) auth; yields (url, user, password). Fails when not installed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubproc import free_port, terminate, wait_for
from kube_cluster import (
    NODE_LOCAL_PROVISIONER,
    SHARED_PROVISIONER,
    Cluster,
    make_node,
    make_root,
    remove_root,
)
from kube_emulator import Emulator
from kube_support import (
    NAMESPACE,
    REGISTRY_CONFIG,
    Hub,
    Kube,
    images,
    seed_catalog,
    start_hub,
    stop_hub,
    write_kubeconfig,
)
from real_cluster import RealCluster, start_cluster, stop_cluster


@pytest.fixture(scope="module")
def kube() -> Iterator[Kube]:
    root = make_root()
    emulator = Emulator(version="1.31")
    emulator.start_in_thread()
    cluster = Cluster(emulator, root, images(root))
    emulator.call(cluster.start())
    kube = Kube(emulator, cluster, root, root / "kubeconfig")
    write_kubeconfig(kube.kubeconfig, emulator.url)
    for node in (make_node("cpu-a"), make_node("cpu-b"), make_node("gpu-1", gpus=2)):
        kube.put("nodes", node)
    for name, provisioner in (("rwx", SHARED_PROVISIONER), ("node-local", NODE_LOCAL_PROVISIONER)):
        kube.put(
            "storageclasses",
            {
                "metadata": {"name": name},
                "provisioner": provisioner,
                "apiVersion": "storage.k8s.io/v1",
            },
        )
    kube.put("namespaces", {"metadata": {"name": NAMESPACE}})
    try:
        yield kube
    finally:
        emulator.call(cluster.shutdown())
        emulator.stop_thread()
        remove_root(root)


@pytest.fixture(scope="session")
def cluster() -> Iterator[RealCluster]:
    root = make_root()
    try:
        started = start_cluster(root / "cluster")
    except RuntimeError as e:
        remove_root(root)
        pytest.fail(str(e), pytrace=False)
    try:
        yield started
    finally:
        stop_cluster(started)
        remove_root(root)


@pytest.fixture
def ns(cluster: RealCluster) -> Iterator[str]:
    with cluster.namespace() as name:
        yield name


@pytest.fixture
def fake_helm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ``helm`` that records each call's arguments, one call per line."""
    bindir = make_root()
    record = bindir / "calls.txt"
    script = bindir / "helm"
    script.write_text(f'#!/bin/sh\necho "$@" >> {record}\necho "Release ready (fake helm)"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    try:
        yield record
    finally:
        remove_root(bindir)


@pytest.fixture(scope="module")
def registry() -> Iterator[tuple[str, str, str]]:
    import bcrypt

    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed: apt-get install docker-registry")
    root, port = make_root(), free_port()
    user, password = "puller", secrets.token_hex(8)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    (root / "htpasswd").write_text(f"{user}:{hashed}\n")
    (root / "config.yml").write_text(REGISTRY_CONFIG.format(root=root, port=port))
    with open(root / "registry.log", "wb") as log:
        proc = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/v2/", proc, root / "registry.log", ready=lambda status: status == 401)
        yield url, user, password
    finally:
        terminate(proc, timeout=10)
        remove_root(root)


@pytest.fixture(scope="module")
def hub(kube: Kube) -> Iterator[Hub]:
    hub, proc = start_hub(kube)
    try:
        seed_catalog(hub)
        yield hub
    finally:
        stop_hub(hub, proc)
