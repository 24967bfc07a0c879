"""``tkhub images``: the environment definitions as OCI images for the cluster.

``lock`` writes each definition's lock and Containerfile from its metadata; ``build``
builds, checks and optionally pushes them, then asks the catalog to sync the
registry so they appear on the spawn page; ``list`` shows definitions and tags.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tkhub.cli.common import DataDir, fail, settings_from
from tkhub.environments import DefinitionError, definitions_dir
from tkhub.environments.containerfile import render
from tkhub.environments.definition import Definition, build_order, load_definitions
from tkhub.environments.locks import LockError, compile_lock
from tkhub.environments.oci_build import (
    BuildOptions,
    ImageResult,
    Outcome,
    build_images,
    image_tag,
)

app = typer.Typer(no_args_is_help=True)
err = Console(stderr=True)

Names = Annotated[list[str] | None, typer.Argument(help="Definitions (default: all).")]
Definitions = Annotated[
    Path | None,
    typer.Option("--definitions", help="Directory of definitions (default: the curated ones)."),
]


def _known(root: Path | None) -> dict[str, Definition]:
    try:
        return load_definitions(root or definitions_dir())
    except DefinitionError as e:
        fail(str(e), 2)


def _order(known: dict[str, Definition], names: list[str] | None) -> list[Definition]:
    try:
        return build_order(known, names or [])
    except DefinitionError as e:
        fail(str(e), 2)


@app.command()
def lock(
    names: Names = None,
    upgrade: Annotated[bool, typer.Option(help="Take the newest releases allowed.")] = False,
    definitions: Definitions = None,
) -> None:
    """Compile each definition's requirements.lock (uv) and write its Containerfile."""
    known = _known(definitions)
    for definition in _order(known, names):
        with err.status(f"Locking {definition.name} ..."):
            try:
                compile_lock(definition, known, upgrade=upgrade)
            except LockError as e:
                fail(f"{definition.name}: the requirements do not resolve:\n{e}")
        definition.containerfile.write_text(render(definition))
        pins = sum(1 for line in definition.lock.read_text().splitlines() if "==" in line)
        typer.echo(f"{definition.name}: {pins} packages pinned in {definition.lock}")


@app.command("list")
def list_definitions(definitions: Definitions = None) -> None:
    """The definitions, their parents and the tag a build gives them."""
    known = _known(definitions)
    table = Table(title=f"Environment definitions: {len(known)}")
    for column in ("Name", "Parent", "GPU", "Display name", "Tag"):
        table.add_column(column)
    for definition in _order(known, None):
        table.add_row(
            definition.name,
            definition.parent or "",
            definition.gpu.value,
            escape(definition.display_name),
            image_tag(definition, known),
        )
    Console().print(table)


def _report(results: list[ImageResult]) -> None:
    table = Table(title="Images")
    for column in ("Image", "Result", "Facts", "Digest", "Pushed / reason"):
        table.add_column(column)
    colours = {Outcome.built: "green", Outcome.unchanged: "green", Outcome.failed: "red"}
    for r in results:
        facts = ""
        if r.facts:
            facts = f"jupyterhub {r.facts.jupyterhub}"
            if r.facts.cuda:
                facts += f", CUDA {r.facts.cuda} ({','.join(r.facts.cuda_archs)})"
        colour = colours.get(r.outcome, "yellow")
        table.add_row(
            r.tag, f"[{colour}]{r.outcome.value}[/{colour}]", facts, r.digest,
            escape("\n".join([*r.pushed, r.reason]).strip()),
        )  # fmt: skip
    Console().print(table)


def _sync_pushed(data_dir: Path | None, push: str) -> None:
    """Ask the catalog to sync the registry pushed to, when it is configured."""
    from tkhub.catalog.registry.sync import sync_registries
    from tkhub.cli.catalog import _sessions

    settings = settings_from(data_dir)
    host = push.split("/", 1)[0]
    chosen = [r for r in settings.registries if host in str(r.url)]
    if not chosen:
        typer.echo(
            f"No registry in the settings points at {host}: add it under 'registries:' "
            "(docs/registry.md) for the images to appear on the spawn page."
        )
        return
    report = asyncio.run(sync_registries(settings, _sessions(settings), registries=chosen))
    for run in report.registries:
        typer.echo(
            f"Catalog synced from {run.registry}: {len(run.added)} added, "
            f"{len(run.updated)} updated, {len(run.skipped)} skipped."
        )


@app.command()
def build(
    names: Names = None,
    base: Annotated[
        str | None,
        typer.Option(help="Base image of the root definitions (a local or mirrored one)."),
    ] = None,
    push: Annotated[
        str | None,
        typer.Option(help="Push checked images to REGISTRY/PREFIX, then sync the catalog."),
    ] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(help="CA bundle for pip/uv inside the build (TLS-intercepting proxies)."),
    ] = None,
    index_url: Annotated[str | None, typer.Option(help="A PyPI mirror for the build.")] = None,
    platform: Annotated[
        str | None, typer.Option(help="Target platform, such as linux/amd64.")
    ] = None,
    tls_verify: Annotated[bool, typer.Option(help="Verify the registry's TLS certificate.")] = True,
    definitions: Definitions = None,
    data_dir: DataDir = None,
) -> None:
    """Build the definitions (parents first), check each image, push the checked ones."""
    known = _known(definitions)
    _order(known, names)  # unknown names: exit 2 before anything is built
    builder = shutil.which("buildah")
    if builder is None:
        fail("buildah is not installed: apt-get install buildah")
    skopeo = shutil.which("skopeo")
    if push and skopeo is None:  # asks the registry what it has before pushing
        fail("skopeo is not installed (--push asks the registry first): apt-get install skopeo")
    if ca_bundle is not None and not ca_bundle.is_file():
        fail(f"--ca-bundle {ca_bundle}: no such file", 2)
    options = BuildOptions(
        base=base, ca_bundle=ca_bundle, index_url=index_url, platform=platform,
        push=push, tls_verify=tls_verify, buildah=builder, skopeo=skopeo or "skopeo",
    )  # fmt: skip
    with err.status("Building ...") as status:

        def progress(name: str, line: str) -> None:
            if line.split(": ", 1)[-1].startswith(
                ("STEP", "COMMIT", "Writing", "check", "Copying", "in the registry")
            ):
                err.print(f"[bold]{name}[/bold] {escape(line[:160])}")
            status.update(f"{name}: {escape(line[:100])}")

        results = build_images(known, names or [], options, progress)
    _report(results)
    if push and any(r.pushed for r in results):
        _sync_pushed(data_dir, push)
    if any(r.outcome in (Outcome.failed, Outcome.skipped) for r in results):
        raise typer.Exit(1)
