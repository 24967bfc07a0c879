"""``tkhub catalog``: sync Jupyter images from the configured OCI registries, list
the catalog.

Both commands work on the catalog database directly (``settings.database_url``),
so they run with or without the hub; the running catalog service picks up a
sync's changes by itself within seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog import db, store
from tkhub.catalog.registry.report import RegistryReport, SyncReport
from tkhub.catalog.registry.sync import UnknownRegistry, select_registries, sync_registries
from tkhub.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True)
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="tkhub data directory.")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Catalog database (default: SQLite in the data dir)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _settings(data_dir: Path | None, database_url: str | None) -> Settings:
    try:
        return load_settings(data_dir=data_dir, catalog_database_url=database_url)
    except ValueError as e:
        err.print(f"[red]Settings are not valid:[/red] {e}")
        raise typer.Exit(2) from None


def _sessions(settings: Settings) -> sessionmaker[Session]:
    try:
        engine = db.make_engine(settings.database_url)
        db.upgrade(engine)
    except (SQLAlchemyError, OSError) as e:
        err.print(f"[red]Cannot open the catalog database:[/red] {type(e).__name__}: {e}")
        raise typer.Exit(1) from None
    return db.session_factory(engine)


def report_table(run: RegistryReport) -> Table:
    state = "ok" if run.ok else "[red]failed[/red]"
    scope = f" ({run.repository})" if run.repository else ""
    table = Table(title=f"Registry {run.registry}{scope}: {state}")
    for column in ("Result", "Entry", "Image", "Detail"):
        table.add_column(column)
    for change in run.added:
        table.add_row(
            "[green]added[/green]",
            change.name,
            f"{change.repository}:{change.tag}",
            ", ".join(change.platforms),
        )
    for change in run.updated:
        table.add_row(
            "[yellow]updated[/yellow]",
            change.name,
            f"{change.repository}:{change.tag}",
            ", ".join(change.platforms),
        )
    for name in run.removed:
        table.add_row("[magenta]removed[/magenta]", name, "", "")
    for skip in run.skipped:
        image = f"{skip.repository}:{skip.tag}" if skip.tag else skip.repository
        table.add_row("[red]skipped[/red]", "", image, skip.reason)
    for error in run.errors:
        table.add_row("[red]error[/red]", "", "", error)
    table.caption = (
        f"{len(run.added)} added, {len(run.updated)} updated, {len(run.unchanged)} unchanged, "
        f"{len(run.removed)} removed, {len(run.skipped)} skipped"
    )
    return table


@app.command()
def sync(
    registry: Annotated[str | None, typer.Option(help="Only this registry (by name).")] = None,
    repository: Annotated[str | None, typer.Option(help="Only this repository.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log each request problem.")] = False,
) -> None:
    """Discover Jupyter images in the configured registries and update the catalog."""
    # The table already shows every skip with its reason; logs only on request.
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, format="%(message)s")
    settings = _settings(data_dir, database_url)
    try:
        chosen = select_registries(settings, registry)
    except UnknownRegistry as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    if not chosen:
        err.print(
            "No registries configured: add 'registries:' to tkhub.yaml (see docs/registry.md)."
        )
        raise typer.Exit(1)
    report: SyncReport = asyncio.run(
        sync_registries(settings, _sessions(settings), registries=chosen, repository=repository)
    )
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        for run in report.registries:
            Console().print(report_table(run))
    if not all(run.ok for run in report.registries):
        raise typer.Exit(1)


@app.command("list")
def list_entries(
    data_dir: DataDir = None, database_url: DatabaseUrl = None, as_json: AsJson = False
) -> None:
    """List the catalog's entries, hidden ones included."""
    settings = _settings(data_dir, database_url)
    with _sessions(settings)() as session:
        images = store.list_images(session)
    if as_json:
        typer.echo(json.dumps([i.model_dump(mode="json") for i in images], indent=2))
        return
    table = Table(title=f"Catalog: {len(images)} entries")
    for column in ("Name", "Title", "Kind", "GPU", "Source", "Image / Python", "Flags"):
        table.add_column(column)
    for image in images:
        flags = [f for f, on in (("default", image.default), ("hidden", image.hidden)) if on]
        if image.allowed_groups:
            flags.append("groups: " + ",".join(image.allowed_groups))
        table.add_row(
            image.name,
            image.title,
            image.kind.value,
            image.gpu.value,
            image.source.value,
            image.image or image.python or "",
            " ".join(flags),
        )
    Console().print(table)
