"""Pieces the ``users``, ``env`` and ``status`` commands share.

Every failure ends the command with one line on stderr and an exit status (1: the
operation failed, 2: the command line or the settings are wrong); no traceback
reaches the administrator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import httpx
import typer
import yaml
from rich.console import Console
from rich.markup import escape

from tkhub.catalog.client import CatalogClient, CatalogRequestError
from tkhub.errors import CatalogUnavailable
from tkhub.local.secrets import CLI_TOKEN, read_secret, secret_file
from tkhub.settings import Settings, load_settings

T = TypeVar("T")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="tkhub data directory.")]
err = Console(stderr=True, soft_wrap=True)  # soft wrap: an error stays one line


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]Error:[/red] {escape(one_line(message))}")
    raise typer.Exit(code)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def settings_from(data_dir: Path | None) -> Settings:
    """Settings of the data directory, with the ports of its running ``tkhub up``."""
    from tkhub.local.up import with_running

    try:
        return with_running(load_settings(data_dir=data_dir))
    except (ValueError, OSError, yaml.YAMLError) as e:
        fail(f"settings are not valid: {e}", 2)


def cli_token(settings: Settings) -> str:
    """The CLI's hub token, which ``tkhub up`` writes; a clear error when unreadable."""
    token = read_secret(settings, CLI_TOKEN)
    if token is None:
        fail(
            f"cannot read the CLI token {secret_file(settings, CLI_TOKEN)}: run `tkhub up` "
            "first, or run this command as the user that runs the hub"
        )
    return token


def describe_detail(detail: Any) -> str:
    """A FastAPI ``detail``: a string, or a list of ``{loc, msg}`` validation errors."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


# An admin command may wait longer than a spawn: adding a local environment makes the
# catalog run that interpreter to check it, which takes seconds on a busy machine.
CLI_CATALOG_TIMEOUT = 60.0


def catalog_call(settings: Settings, action: Callable[[CatalogClient], Awaitable[T]]) -> T:
    """Run ``action`` with a CatalogClient holding the CLI token; errors end the command."""
    token = cli_token(settings)
    url = settings.catalog_url
    timeout = max(settings.catalog_timeout, CLI_CATALOG_TIMEOUT)

    async def run() -> T:
        async with CatalogClient(url, token, timeout=timeout) as client:
            return await action(client)

    try:
        return asyncio.run(run())
    except CatalogUnavailable as e:
        if isinstance(e.__cause__, httpx.TimeoutException):
            fail(f"the catalog at {url} did not answer within {timeout:g} s")
        if isinstance(e.__cause__, httpx.HTTPError):
            fail(f"the catalog at {url} does not answer: is `tkhub up` running?")
        fail(f"the catalog at {url} failed: {e}")  # a 5xx; str() carries its body
    except CatalogRequestError as e:
        fail(f"the catalog refused ({e.status}): {describe_detail(e.detail)}")
