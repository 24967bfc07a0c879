"""The Zero to JupyterHub chart through the ``helm`` CLI, its output streamed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tkhub.kube.deploy.cluster import ClusterConfig

CHART = "jupyterhub"


class HelmError(Exception):
    """helm failed; ``str()`` says which command and its last output line."""


def upgrade_args(cfg: ClusterConfig, values: Path) -> list[str]:
    return [
        "upgrade", "--install", cfg.names.chart_release, CHART,
        "--repo", cfg.chart_repo,
        "--version", cfg.chart_version,
        "--namespace", cfg.namespace,
        "--values", str(values),
        "--wait", "--timeout", "10m",
    ]  # fmt: skip


def uninstall_args(cfg: ClusterConfig) -> list[str]:
    return ["uninstall", cfg.names.chart_release, "--namespace", cfg.namespace, "--wait"]


async def run_helm(
    args: list[str], progress: Callable[[str], None], kubeconfig: Path | None = None
) -> None:
    """Run ``helm args``, handing each output line to ``progress``."""
    env_args = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    process = await asyncio.create_subprocess_exec(
        "helm", *args, *env_args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    last = ""
    async for raw in process.stdout:
        line = raw.decode(errors="replace").rstrip()
        if line:
            last = line
            progress(f"helm: {line}")
    if await process.wait() != 0:
        raise HelmError(f"helm {' '.join(args[:3])} failed: {last or 'no output'}")
