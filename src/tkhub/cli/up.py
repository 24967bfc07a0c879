"""``tkhub up``: start the hub, the catalog and the idle culler on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.panel import Panel

from tkhub.local import up as local_up
from tkhub.settings import load_settings

out = Console()
err = Console(stderr=True)


def _report_preparation(
    data_dir: Path, admin: local_up.FirstAdmin | None, freed: list[str]
) -> None:
    out.print(f"Data directory: {data_dir}")
    warning = local_up.interpreter_warning()
    if warning:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    if freed:
        out.print(f"Freed GPUs held by servers that are gone: {', '.join(freed)}")
    if admin is not None:
        out.print(
            Panel(
                f"Sign in as [bold]{admin.name}[/bold] with password "
                f"[bold]{admin.password}[/bold]\n"
                f"(shown once; also in {admin.password_file}, mode 0600).\n"
                "Add accounts with: tkhub users add NAME",
                title="First start: your admin account",
            )
        )


def register(app: typer.Typer) -> None:
    app.command("up")(up)


def up(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where users' files and all state live.")
    ] = None,
    ip: Annotated[
        str | None, typer.Option("--ip", help="Address the hub listens on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Hub port (default 8000).")] = None,
    hub_api_port: Annotated[
        int | None, typer.Option("--hub-api-port", help="Hub API port (default 8081).")
    ] = None,
    proxy_api_port: Annotated[
        int | None, typer.Option("--proxy-api-port", help="Proxy API port (default 8001).")
    ] = None,
    catalog_port: Annotated[
        int | None, typer.Option("--catalog-port", help="Catalog service port (default 8011).")
    ] = None,
    jobs_port: Annotated[
        int | None, typer.Option("--jobs-port", help="Jobs service port (default 8012).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Catalog database (default: SQLite in the data dir)."),
    ] = None,
    cull_idle_timeout: Annotated[
        int | None,
        typer.Option("--cull-idle-timeout", help="Stop servers idle this many seconds (0: never)."),
    ] = None,
    oidc_issuer: Annotated[
        str | None,
        typer.Option(
            "--oidc-issuer", help="Sign in through this OpenID provider (Keycloak realm URL)."
        ),
    ] = None,
    oidc_client_id: Annotated[
        str | None, typer.Option("--oidc-client-id", help="The hub's client ID (default tkhub).")
    ] = None,
    oidc_client_secret_file: Annotated[
        Path | None,
        typer.Option(
            "--oidc-client-secret-file", help="A file (mode 0600) holding the client secret."
        ),
    ] = None,
) -> None:
    """Start tkhub in the foreground: JupyterHub, the image catalog, the jobs service and
    the idle culler.

    Ctrl-C stops the hub, its services and every single-user server; running jobs go
    on (the jobs service finds them again at the next start), and users' files stay.
    """
    overrides: dict[str, Any] = {
        "ip": ip, "port": port, "hub_api_port": hub_api_port, "proxy_api_port": proxy_api_port,
        "catalog_port": catalog_port, "jobs_port": jobs_port,
        "catalog_database_url": database_url, "cull_idle_timeout": cull_idle_timeout,
    }  # fmt: skip
    secret_file = str(oidc_client_secret_file) if oidc_client_secret_file else None
    oidc = {"issuer": oidc_issuer, "client_id": oidc_client_id, "client_secret_file": secret_file}
    _start(data_dir, overrides, {k: v for k, v in oidc.items() if v is not None})


def _start(data_dir: Path | None, overrides: dict[str, Any], oidc: dict[str, str]) -> None:
    """Check the settings, prepare the data directory, hand over to the supervisor."""
    try:
        settings = load_settings(data_dir=data_dir, **overrides, oidc=oidc or None)
    except (ValidationError, ValueError) as e:
        err.print(f"[red]error:[/red] settings are not valid: {e}")
        raise typer.Exit(2) from None
    if oidc and settings.oidc is not None:  # the hub reads the section whole
        overrides["oidc"] = settings.oidc.model_dump(mode="json")
    try:
        config, admin, freed = local_up.prepare(settings)
    except local_up.UpError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None

    _report_preparation(settings.data_dir, admin, freed)
    out.print(f"Starting JupyterHub on {settings.hub_url} ...")
    local_up.exec_supervisor(settings, overrides, config)  # does not return
