"""``tkhub jobs run|list|show|logs|cancel``: notebooks run as jobs.

In a terminal of a user's server it talks to the jobs service with the server's own
token (``TKHUB_JOBS_URL``, ``JUPYTERHUB_API_TOKEN``); on the hub's machine with the
``tkhub`` command's admin token, where ``run`` needs ``--user`` and ``list`` shows
every user's jobs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tkhub.cli.common import DataDir, cli_token, fail, settings_from
from tkhub.jobs.terminal import describe, notebook_argument, parse_parameter

app = typer.Typer(no_args_is_help=True)
out = Console(highlight=False)  # plain numbers: scripts read "Job 7 ..."


def in_a_server(data_dir: Path | None) -> bool:
    """Inside a user's server (its token, its user) rather than on the hub's machine
    (the ``tkhub`` command's admin token, which is no user's)."""
    url, token = os.environ.get("TKHUB_JOBS_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
    return bool(url and token) and data_dir is None


def connection(data_dir: Path | None) -> tuple[str, str]:
    """The jobs service's URL and a token: the server's own inside a server."""
    if in_a_server(data_dir):
        return os.environ["TKHUB_JOBS_URL"].rstrip("/"), os.environ["JUPYTERHUB_API_TOKEN"]
    settings = settings_from(data_dir)
    return settings.jobs_url, cli_token(settings)


def call(data_dir: Path | None, method: str, path: str, **kw: Any) -> httpx.Response:
    url, token = connection(data_dir)
    try:
        response = httpx.request(method, f"{url}/api/v1{path}", timeout=60,
                                 headers={"Authorization": f"token {token}"}, **kw)  # fmt: skip
    except httpx.HTTPError as e:
        fail(f"the jobs service does not answer at {url} ({type(e).__name__}); is tkhub up?")
    if response.status_code >= 400:
        try:
            detail = response.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = response.text[:300]
        fail(f"{detail} (HTTP {response.status_code})")
    return response


@app.command("run")
def run(
    notebook: Annotated[str, typer.Argument(help="A notebook in your notebooks folder.")],
    env: Annotated[
        str | None, typer.Option("--env", help="Environment (default: the default).")
    ] = None,
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="none, auto, model:<m>, node:<n>, device:<i>.")
    ] = None,
    count: Annotated[int | None, typer.Option("--count", help="How many GPUs.")] = None,
    size: Annotated[
        str | None,
        typer.Option("--size", help="full, half, quarter (of the environment's limits)."),
    ] = None,
    parameter: Annotated[
        list[str] | None,
        typer.Option("-p", "--parameter", help="name=value, for the notebook's parameters cell."),
    ] = None,
    time_limit: Annotated[
        float, typer.Option("--time-limit", help="Hours before the job is stopped.")
    ] = 4.0,
    user: Annotated[str | None, typer.Option("--user", help="Admins: run it as this user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run a notebook as a job with the spawn page's choices; print its number."""
    if user is None and not in_a_server(data_dir):
        fail(
            f"--user: whose notebook is {notebook}? On the hub's machine a job runs as a "
            f"user, from their notebooks folder: tkhub jobs run {notebook} --user NAME",
            2,
        )
    try:
        parameters = dict(parse_parameter(p) for p in parameter or [])
    except ValueError as e:
        fail(str(e), 2)
    body = {
        "notebook": notebook_argument(notebook), "image": env, "gpu": gpu, "count": count,
        "size": size, "parameters": parameters, "time_limit": max(1, int(time_limit * 3600)),
    }  # fmt: skip
    params = {"user": user} if user else {}
    job = call(data_dir, "POST", "/jobs", json=body, params=params).json()
    out.print(escape(describe(job)), soft_wrap=True)
    out.print(f"Output: notebooks/{escape(job['output'])}, log: notebooks/{escape(job['log'])}")


@app.command("list")
def list_jobs(
    everyone: Annotated[bool, typer.Option("--all", help="Admins: every user's jobs.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Your jobs, newest first, with their state and queue position; on the hub's
    machine (the admin token, which has no jobs of its own), every user's."""
    everyone = everyone or not in_a_server(data_dir)
    jobs = call(data_dir, "GET", "/jobs", params={"all": "true"} if everyone else {}).json()
    table = Table(title=f"{'Jobs of every user' if everyone else 'Your jobs'}: {len(jobs)}")
    for column in ("#", "User", "Notebook", "State", "Environment", "GPU", "Duration"):
        table.add_column(column)
    for job in jobs:
        state = job["state"] + (
            f" (#{job['queue_position']} in queue)" if job.get("queue_position") else ""
        )
        duration = f"{job['duration']:.1f} s" if job.get("duration") is not None else "-"
        table.add_row(str(job["id"]), escape(job["user"]), escape(job["notebook"]), state,
                      escape(job["environment"]), escape(job["placement"]), duration)  # fmt: skip
    out.print(table)


@app.command("show")
def show(job_id: int, data_dir: DataDir = None) -> None:
    """One job: state, reason, failing cell, GPUs, times."""
    job = call(data_dir, "GET", f"/jobs/{job_id}").json()
    out.print(escape(describe(job)), soft_wrap=True)
    for key in (
        "reason",
        "failed_cell",
        "error",
        "node",
        "output",
        "log",
        "created",
        "started",
        "finished",
        "duration",
    ):
        if job.get(key) not in (None, ""):
            out.print(f"  {key + ':':<12} {escape(str(job[key]))}", soft_wrap=True)


@app.command("logs")
def logs(job_id: int, data_dir: DataDir = None) -> None:
    """The end of the job's log."""
    typer.echo(call(data_dir, "GET", f"/jobs/{job_id}/log").text, nl=False)


@app.command("cancel")
def cancel(job_id: int, data_dir: DataDir = None) -> None:
    """Stop a queued or running job (and every process it started)."""
    job = call(data_dir, "POST", f"/jobs/{job_id}/cancel").json()
    out.print(f"Job {job['id']}: cancelling ({escape(job['reason'])}).")
