"""``tkhub deploy render|preflight|apply|verify|uninstall``: tkhub on a Kubernetes cluster.

All five read one ``tkhub-cluster.yaml``. Errors are one line on stderr, exit 1
(a failed check) or 2 (bad config), never a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tkhub.kube.deploy.apply import ManifestsRejected, PreflightFailed, apply
from tkhub.kube.deploy.checks import Check, any_failed, print_checks
from tkhub.kube.deploy.cluster import ClusterConfig, ClusterConfigError, load_cluster_config
from tkhub.kube.deploy.helm import HelmError
from tkhub.kube.deploy.kubeapi import KubeApi, KubeError, load_connection
from tkhub.kube.deploy.plan import plan
from tkhub.kube.deploy.preflight import preflight
from tkhub.kube.deploy.render import render
from tkhub.kube.deploy.uninstall import uninstall
from tkhub.kube.deploy.verify import verify

app = typer.Typer(no_args_is_help=True)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-f", help="The cluster config file (tkhub-cluster.yaml).")
]
KubeconfigOpt = Annotated[
    Path | None, typer.Option("--kubeconfig", help="Kubeconfig; default $KUBECONFIG.")
]
OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Directory for the manifests and values.yaml.")
]
DEFAULT_CONFIG = Path("tkhub-cluster.yaml")
DEFAULT_OUT = Path("tkhub-deploy")


def _config(path: Path) -> ClusterConfig:
    try:
        return load_cluster_config(path)
    except ClusterConfigError as e:
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _progress(line: str) -> None:
    out.print(line, highlight=False, markup=False, soft_wrap=True)


def _run(
    kubeconfig: Path | None,
    cfg: ClusterConfig,
    work: Callable[[KubeApi, ClusterConfig], Awaitable[T]],
) -> T:
    """Run ``work`` with an API client; API and helm failures become one line.

    A config file that names no namespace takes the kubeconfig context's, as
    kubectl and helm do.
    """

    async def main() -> T:
        connection = await load_connection(kubeconfig)
        chosen = cfg
        if "namespace" not in cfg.model_fields_set and connection.namespace:
            chosen = cfg.model_copy(update={"namespace": connection.namespace})
        async with KubeApi(connection) as api:
            return await work(api, chosen)

    try:
        return asyncio.run(main())
    except (KubeError, HelmError) as e:
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.command("render")
def render_cmd(config: ConfigOpt = DEFAULT_CONFIG, out_dir: OutOpt = DEFAULT_OUT) -> None:
    """Write the manifests and the chart values to a directory (review, or commit to Git)."""
    cfg = _config(config)
    for path in render(cfg, out_dir):
        _progress(f"wrote {path}")


@app.command("preflight")
def preflight_cmd(config: ConfigOpt = DEFAULT_CONFIG, kubeconfig: KubeconfigOpt = None) -> None:
    """Check the cluster offers what tkhub needs; one line per problem with its fix."""
    cfg = _config(config)
    checks = _run(kubeconfig, cfg, preflight)
    print_checks(checks, "preflight", out)
    if any_failed(checks):
        raise typer.Exit(1)


@app.command("plan")
def plan_cmd(config: ConfigOpt = DEFAULT_CONFIG, kubeconfig: KubeconfigOpt = None) -> None:
    """What apply would create or update, checked by the API server (dry run); changes nothing."""
    planned = _run(kubeconfig, _config(config), plan)
    for p in planned:
        words = f"[red]rejected[/]: {escape(p.rejected)}" if p.rejected else p.action
        out.print(f"{p.where}: {words}", highlight=False, soft_wrap=True)
    if any(p.rejected for p in planned):
        raise typer.Exit(1)


@app.command("apply")
def apply_cmd(
    config: ConfigOpt = DEFAULT_CONFIG,
    out_dir: OutOpt = DEFAULT_OUT,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Preflight, then apply the manifests (server-side) and install or upgrade the chart."""
    cfg = _config(config)

    async def work(api: KubeApi, cfg: ClusterConfig) -> Any:
        try:
            return await apply(api, cfg, out_dir, _progress, kubeconfig)
        except PreflightFailed as e:
            print_checks(e.checks, "preflight", out)
            err.print(
                "[red]error:[/] preflight failed; nothing was changed",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None
        except ManifestsRejected as e:
            for planned in e.rejected:
                err.print(f"[red]rejected[/] {planned.where}: {escape(planned.rejected)}",
                          highlight=False, soft_wrap=True, markup=True)  # fmt: skip
            err.print("[red]error:[/] the API server rejected the manifests above; "
                      "nothing was changed", highlight=False, soft_wrap=True)  # fmt: skip
            raise typer.Exit(1) from None

    _run(kubeconfig, cfg, work)


@app.command("verify")
def verify_cmd(config: ConfigOpt = DEFAULT_CONFIG, kubeconfig: KubeconfigOpt = None) -> None:
    """Prove the deployment works: readiness, volumes across nodes, catalog, GPU, login."""
    cfg = _config(config)

    async def work(api: KubeApi, cfg: ClusterConfig) -> tuple[list[Check], str]:
        return await verify(api, cfg), cfg.namespace

    checks, namespace = _run(kubeconfig, cfg, work)
    print_checks(checks, f"verify {namespace}", out)
    if any_failed(checks):
        raise typer.Exit(1)


@app.command("uninstall")
def uninstall_cmd(
    config: ConfigOpt = DEFAULT_CONFIG,
    kubeconfig: KubeconfigOpt = None,
    delete_data: Annotated[
        bool,
        typer.Option("--delete-data", help="Also delete the user data volumes and the namespace."),
    ] = False,
) -> None:
    """Remove the release and what tkhub created; user data volumes stay unless --delete-data."""
    cfg = _config(config)
    _run(
        kubeconfig,
        cfg,
        lambda api, cfg: uninstall(
            api, cfg, _progress, delete_data=delete_data, kubeconfig=kubeconfig
        ),
    )
