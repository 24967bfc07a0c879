"""Faults of the real control plane: etcd restarted under a deployment tkhub applied."""

from __future__ import annotations

import time
from pathlib import Path

from real_cluster import RealCluster
from test_cluster_deploy import (
    kubeconfig_of,
    namespace,
    oidc_secret,
    rwx_class,
    volumes_for,
    wide_output,
    workdir,
)
from test_kube_deploy import cli, write_config

__all__ = ["namespace", "rwx_class", "wide_output", "workdir"]  # fixtures


def test_nothing_tkhub_applied_is_lost_when_etcd_restarts(
    cluster: RealCluster, namespace: str, workdir: Path, fake_helm: Path, rwx_class: str
):
    config = write_config(workdir / "c.yaml", namespace)
    oidc_secret(cluster, namespace)
    volumes_for(cluster, namespace, rwx_class)
    code, output = cli("apply", "-f", str(config), "-o", str(workdir / "out"),
                       *kubeconfig_of(cluster))  # fmt: skip
    assert code == 0, output

    cluster.component("stop", "etcd")
    time.sleep(2)
    cluster.component("start", "etcd")

    def answers() -> bool:
        code, _ = cli("plan", "-f", str(config), *kubeconfig_of(cluster))
        return code == 0

    cluster.wait_for("the apiserver to reach etcd again", answers, 60)
    code, output = cli("plan", "-f", str(config), *kubeconfig_of(cluster))
    rows = [line for line in output.splitlines() if ": " in line]
    assert rows and all(line.endswith(": unchanged") for line in rows), output
