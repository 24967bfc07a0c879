"""``tkhub env``: register local Python environments in the running catalog, list, remove.

Unlike ``tkhub catalog`` these go through the catalog's API with the CLI's hub
token, so the catalog validates each write and the spawn page sees it at once.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tkhub.catalog.client import CatalogClient, CatalogRequestError
from tkhub.catalog.local_env_check import EnvironmentCheckError, check_local_environment
from tkhub.catalog.schemas import GpuNeed, ImageCreate, ImagePublic, Kind
from tkhub.cli.common import (
    DataDir,
    catalog_call,
    cli_token,
    describe_detail,
    fail,
    settings_from,
)
from tkhub.environments import DefinitionError, definitions_dir, local_entry, resolve
from tkhub.environments.checks import CheckFailed
from tkhub.environments.definition import Definition, build_order, load_definitions
from tkhub.gpu import nvml
from tkhub.local.env_create import (
    Created,
    EnvCreateError,
    create_environment,
    envs_root,
    prune,
)
from tkhub.settings import Settings

app = typer.Typer(no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Catalog name: lowercase letters, digits, '.-_'.")]


def _entry(
    name: str, python: str, display_name: str, description: str, gpu: GpuNeed
) -> ImageCreate:
    try:
        return ImageCreate(
            name=name,
            kind=Kind.local,
            python=python,
            display_name=display_name,
            description=description,
            gpu=gpu,
        )
    except ValidationError as e:
        fail(describe_detail(e.errors(include_url=False)), 2)


@app.command()
def add(
    name: Name,
    python: Annotated[
        str, typer.Option("--python", help="The environment's interpreter (has jupyterhub).")
    ],
    display_name: Annotated[str, typer.Option(help="Title on the spawn page.")] = "",
    description: Annotated[str, typer.Option(help="One or two sentences.")] = "",
    gpu: Annotated[GpuNeed, typer.Option(help="Whether servers need a GPU.")] = GpuNeed.optional,
    default: Annotated[
        bool, typer.Option("--default", help="Preselect it on the spawn page.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Check a Python environment here, then add it to the catalog as a local entry."""
    # abspath, not resolve(): a virtualenv's python is a symlink to the base
    # interpreter, and resolving it would lose the environment's packages.
    entry = _entry(name, os.path.abspath(python), display_name, description, gpu)
    settings = settings_from(data_dir)
    try:
        info = check_local_environment(entry.python or "")
    except EnvironmentCheckError as e:
        fail(str(e))
    typer.echo(
        f"Checked {info.python}: Python {info.python_version}, "
        f"jupyterhub {info.jupyterhub_version}."
    )

    async def register(client: CatalogClient) -> ImagePublic:
        created = await client.create_image(entry)
        # set_default moves the default from another entry in one step; a
        # create with default=true would be refused while another one holds it.
        return await client.set_default(entry.name) if default else created

    created = catalog_call(settings, register)
    as_default = " as the default" if created.default else ""
    typer.echo(f"Added {created.name} to the catalog at {settings.catalog_url}{as_default}.")


@app.command("list")
def list_entries(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the catalog's environments, hidden ones included."""
    settings = settings_from(data_dir)
    images = catalog_call(settings, lambda c: c.list_images(include_hidden=True))
    if as_json:
        typer.echo(json.dumps([i.model_dump(mode="json") for i in images], indent=2))
        return
    table = Table(title=f"Environments: {len(images)}")
    for column in ("Name", "Display name", "Kind", "Python / image", "GPU", "Default", "Source"):
        table.add_column(column)
    for image in images:
        hidden = " [dim](hidden)[/dim]" if image.hidden else ""
        table.add_row(
            escape(image.name) + hidden,
            escape(image.display_name),
            image.kind.value,
            escape(image.python or image.image or ""),
            image.gpu.value,
            "yes" if image.default else "",
            image.source.value,
        )
    Console().print(table)


def _fits_here(definition: Definition) -> bool:
    """Whether this machine can run it: a GPU-only environment needs an NVIDIA GPU."""
    if definition.gpu is not GpuNeed.required:
        return True
    try:
        return bool(nvml.read_devices())
    except nvml.NvmlUnavailable:
        return False


def _chosen(names: list[str], all_curated: bool) -> list[tuple[Definition, dict[str, Definition]]]:
    if all_curated == bool(names):
        fail("name the definitions to create, or give --all (the curated ones that fit)", 2)
    try:
        if names:
            return [resolve(name) for name in names]
        known = load_definitions(definitions_dir())
    except DefinitionError as e:
        fail(str(e), 2)
    fitting = [d for d in build_order(known) if _fits_here(d)]
    left = sorted(set(known) - {d.name for d in fitting})
    if left:
        typer.echo(f"Not created, no NVIDIA GPU here: {', '.join(left)}.")
    return [(d, known) for d in fitting]


def _register(settings: Settings, entry: ImageCreate, default: bool) -> ImagePublic:
    async def register(client: CatalogClient) -> ImagePublic:
        try:
            await client.get_image(entry.name)
        except CatalogRequestError as e:
            if e.status != 404:
                raise
            saved = await client.create_image(entry)
        else:
            saved = await client.replace_image(entry.name, entry)
        return await client.set_default(entry.name) if default else saved

    return catalog_call(settings, register)


def _create_one(settings: Settings, chosen: Definition, known: dict[str, Definition]) -> Created:
    console = Console(stderr=True)
    with console.status(f"Creating {chosen.name} ...") as status:

        def progress(line: str) -> None:
            status.update(f"Creating {chosen.name}: {escape(line[:100])}")

        try:
            return create_environment(chosen, known, envs_root(settings), progress)
        except (EnvCreateError, CheckFailed) as e:
            fail(f"{chosen.name} was not created: {e}")


@app.command()
def create(
    definitions: Annotated[
        list[str] | None,
        typer.Argument(help="Curated environments (scipy, ml-cpu, ...) or definition directories."),
    ] = None,
    all_curated: Annotated[
        bool, typer.Option("--all", help="Every curated environment this machine can run.")
    ] = False,
    default: Annotated[
        bool, typer.Option("--default", help="Preselect it on the spawn page.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Build definitions' locked packages into environments here, check them, add them."""
    chosen = _chosen(definitions or [], all_curated)
    settings = settings_from(data_dir)
    cli_token(settings)  # fail before a long build if tkhub up never ran here
    for definition, known in chosen:
        created = _create_one(settings, definition, known)
        state = "unchanged" if created.unchanged else "created"
        typer.echo(
            f"{definition.name} {state} in {created.python.parent.parent}: Python "
            f"{created.facts.python}, jupyterhub {created.facts.jupyterhub}; check passed."
        )
        entry = local_entry(definition, created.python, created.facts.for_catalog())
        saved = _register(settings, entry, default and len(chosen) == 1)
        prune(envs_root(settings) / definition.name, created.python.parent.parent, typer.echo)
        as_default = " as the default" if saved.default else ""
        typer.echo(f"Added {saved.name} to the catalog at {settings.catalog_url}{as_default}.")


@app.command()
def remove(name: Name, data_dir: DataDir = None) -> None:
    """Remove an entry from the catalog, and the environment if `tkhub env create` made it
    (a build a server still runs from stays until that server stops)."""
    settings = settings_from(data_dir)
    catalog_call(settings, lambda c: c.delete_image(name))
    typer.echo(f"Removed {name} from the catalog.")
    built = envs_root(settings) / name
    if built.is_dir():
        prune(built, None, typer.echo)
        if not any(built.iterdir()):
            built.rmdir()
            typer.echo(f"Removed the environment {built}.")
