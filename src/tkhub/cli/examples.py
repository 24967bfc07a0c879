"""``tkhub examples``: sync the examples repository now, or show the last sync."""

from __future__ import annotations

import typer

from tkhub.cli.common import DataDir, settings_from
from tkhub.examples import sync_examples
from tkhub.examples.repository import SyncStatus, read_status

app = typer.Typer(no_args_is_help=True)


def describe(status: SyncStatus | None) -> str:
    if status is None:
        return "never synced"
    state = "ok" if status.ok else "FAILED"
    revision = f" at {status.revision[:12]}" if status.revision else ""
    return f"{state} {status.finished_at} from {status.source}{revision}: {status.message}"


@app.command("sync")
def sync_now(data_dir: DataDir = None) -> None:
    """Fetch the examples (git URL in the settings, else the shipped ones), validate
    them and swap them in; a failure keeps the last good copy."""
    settings = settings_from(data_dir)
    status = sync_examples(settings)
    typer.echo(f"Examples sync {describe(status)}", err=not status.ok)
    if not status.ok:
        raise typer.Exit(1)


@app.command()
def status(data_dir: DataDir = None) -> None:
    """The last sync: when, from where, and its result."""
    settings = settings_from(data_dir)
    typer.echo(f"Examples: {describe(read_status(settings.examples_dir))}")
