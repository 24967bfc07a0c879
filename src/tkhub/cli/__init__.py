"""``tkhub``: the command line. Each command group lives in its own module."""

from __future__ import annotations

import typer

from tkhub.cli import (
    catalog,
    deploy,
    env,
    examples,
    gpu,
    images,
    jobs,
    link,
    status,
    up,
    users,
)

app = typer.Typer(
    name="tkhub",
    help="tkhub: JupyterHub for GPU workstations and small GPU clusters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

up.register(app)
status.register(app)
link.register(app)
app.add_typer(users.app, name="users", help="Manage sign-in accounts.")
app.add_typer(env.app, name="env", help="Register and list local Python environments.")
app.add_typer(images.app, name="images", help="Build environment definitions as images.")
app.add_typer(examples.app, name="examples", help="Sync the examples; show the last sync.")
app.add_typer(catalog.app, name="catalog", help="The image catalog and registry sync.")
app.add_typer(gpu.app, name="gpu", help="The GPU inventory: what is free, who holds what.")
app.add_typer(jobs.app, name="jobs", help="Run notebooks as jobs; list, show, cancel them.")
app.add_typer(deploy.app, name="deploy", help="Deploy to, verify and remove from Kubernetes.")


def main() -> None:
    app()
