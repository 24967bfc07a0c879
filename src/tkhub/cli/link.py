"""``tkhub link``: print a launch link that starts a given environment and placement.

The link is ``<hub>/hub/spawn[/USER/SERVER]?image=NAME&gpu=...&count=N``. Opening it
signs the user in (keeping the query) and starts that selection; the hub validates
it exactly like the spawn form and answers 400 with the reason if it cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

import typer
from jupyterhub.slugs import is_valid_safe_slug
from rich.console import Console

from tkhub.catalog.schemas import is_slug
from tkhub.selection import options_for
from tkhub.settings import load_settings

err = Console(stderr=True)


class LinkError(ValueError):
    """A link that would be refused anyway; ``str()`` says which option and why."""


def launch_link(
    hub_url: str,
    *,
    image: str,
    gpu: str = "auto",
    count: int = 1,
    user: str | None = None,
    server: str | None = None,
) -> str:
    """The launch link for a selection; raises ``LinkError`` for values the hub would refuse."""
    if not is_slug(image):
        raise LinkError(f"--image: {image!r} is not a catalog entry name")
    gpu = gpu.strip()
    if not gpu:
        raise LinkError(f"--gpu: {gpu!r} is not none, auto, a model, a node or a device")
    if count < 1:
        raise LinkError("--count: must be at least 1")
    if server and not user:
        raise LinkError("--server: a named server link needs --user as well")
    if server and not is_valid_safe_slug(server):
        raise LinkError(f"--server: {server!r} is not a valid server name")
    path = "/hub/spawn"
    if user:
        path += "/" + quote(user, safe="")
        if server:
            path += "/" + server
    params = options_for(image, gpu, count)
    return f"{hub_url.rstrip('/')}{path}?{urlencode(params)}"


def link(
    image: Annotated[str, typer.Option("--image", help="Catalog entry name.")],
    gpu: Annotated[
        str,
        typer.Option("--gpu", help="none, auto, a GPU model, a node, or model:/node:/device:X."),
    ] = "auto",
    count: Annotated[int, typer.Option("--count", help="Number of GPUs.")] = 1,
    server: Annotated[
        str | None, typer.Option("--server", help="Named server (needs --user).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="User the server belongs to.")] = None,
    hub_url: Annotated[
        str | None,
        typer.Option("--hub-url", help="Public URL of the hub (default: from the settings)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="tkhub data directory.")
    ] = None,
) -> None:
    """Print a launch link: opening it starts IMAGE on the chosen GPU after sign-in."""
    base = hub_url or load_settings(**({"data_dir": data_dir} if data_dir else {})).hub_url
    try:
        typer.echo(launch_link(base, image=image, gpu=gpu, count=count, user=user, server=server))
    except LinkError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    app.command("link")(link)
