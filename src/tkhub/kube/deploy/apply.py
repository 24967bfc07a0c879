"""``tkhub deploy apply``: preflight, render, server-side apply, then the chart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tkhub.kube.deploy.checks import Check, any_failed
from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.deploy.helm import run_helm, upgrade_args
from tkhub.kube.deploy.kubeapi import KubeApi
from tkhub.kube.deploy.manifests import render_manifests
from tkhub.kube.deploy.plan import Planned, plan
from tkhub.kube.deploy.preflight import preflight
from tkhub.kube.deploy.render import VALUES_FILE, render

Progress = Callable[[str], None]


class ManifestsRejected(Exception):
    """The API server refused objects in the dry run; nothing was applied."""

    def __init__(self, rejected: list[Planned]) -> None:
        super().__init__("; ".join(f"{p.where}: {p.rejected}" for p in rejected))
        self.rejected = rejected


class PreflightFailed(Exception):
    """Apply stopped before changing anything; ``checks`` say why."""

    def __init__(self, checks: list[Check]) -> None:
        super().__init__("preflight failed: " + "; ".join(c.name for c in checks if c.failed))
        self.checks = checks


async def apply(
    api: KubeApi,
    cfg: ClusterConfig,
    out_dir: Path,
    progress: Progress,
    kubeconfig: Path | None = None,
) -> list[Check]:
    """Apply everything; raises ``PreflightFailed`` or ``ManifestsRejected`` (nothing
    changed), or ``HelmError``."""
    checks = await preflight(api, cfg)
    if any_failed(checks):
        raise PreflightFailed(checks)
    for check in checks:
        if check.outcome == "warn":
            progress(f"warning: {check.name}: {check.message}")
    render(cfg, out_dir)
    progress(f"rendered manifests and values into {out_dir}")
    objects = render_manifests(cfg)
    planned = await plan(api, cfg, objects)
    rejected = [p for p in planned if p.rejected]
    if rejected:
        raise ManifestsRejected(rejected)
    progress(f"the API server accepts all {len(planned)} objects (server-side dry run)")
    for index, obj in enumerate(objects, 1):
        if obj["kind"] == "Job":  # a one-shot whose pod template cannot change: run anew
            await api.delete("Job", obj["metadata"]["name"], obj["metadata"]["namespace"])
        await api.apply(obj)
        meta = obj["metadata"]
        where = f"{meta['namespace']}/" if "namespace" in meta else ""
        progress(f"[{index}/{len(objects)}] applied {obj['kind']} {where}{meta['name']}")
    progress(f"installing chart {cfg.chart_version} as release {cfg.names.chart_release}")
    await run_helm(upgrade_args(cfg, out_dir / VALUES_FILE), progress, kubeconfig)
    progress("done; run `tkhub deploy verify` to prove it works")
    return checks
