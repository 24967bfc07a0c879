"""``tkhub status``: is the hub answering, are the catalog and jobs service healthy,
which servers run.

Exit status 0 when every check passes, 1 when the hub does not answer, the catalog
is down or unhealthy, or the running servers cannot be listed. The culler, the
examples and the jobs service are shown with their state; like a platform service
(MLflow, a gateway) that does not answer, they do not change the exit status.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tkhub.cli.common import DataDir, cli_token, one_line, settings_from
from tkhub.cli.examples import describe
from tkhub.examples.repository import read_status
from tkhub.local.inventory import local_inventory
from tkhub.local.ledger import ledger_for
from tkhub.services import ServiceCheck, check_services
from tkhub.settings import Settings

PAGINATED = "application/jupyterhub-pagination+json"


@dataclass(frozen=True)
class ServiceHealth:
    """Whether one part of a running tkhub answers, in a line for `tkhub status`."""

    ok: bool
    text: str


def check_hub(http: httpx.Client, base: str) -> ServiceHealth:
    try:
        response = http.get(f"{base}/hub/api")
    except httpx.HTTPError as e:
        return ServiceHealth(False, f"does not answer at {base} ({type(e).__name__})")
    if response.status_code != 200:
        return ServiceHealth(False, f"answered {response.status_code} at {base}/hub/api")
    version = response.json().get("version", "?")
    return ServiceHealth(True, f"answering at {base} (JupyterHub {version})")


def check_catalog(http: httpx.Client, base: str) -> ServiceHealth:
    try:
        response = http.get(f"{base}/health")
    except httpx.HTTPError as e:
        return ServiceHealth(False, f"does not answer at {base} ({type(e).__name__})")
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200 and body.get("status") == "ok":
        return ServiceHealth(True, f"healthy at {base} (database {body.get('db', '?')})")
    detail = f"{response.status_code}: database {body.get('db')}"
    return ServiceHealth(False, f"unhealthy at {base} ({detail})")


def check_jobs(http: httpx.Client, base: str, token: str) -> ServiceHealth:
    """The jobs service answers the admin's list: how many jobs run and wait."""
    try:
        response = http.get(f"{base}/api/v1/jobs", params={"all": "true"},
                            headers={"Authorization": f"token {token}"})  # fmt: skip
    except httpx.HTTPError as e:
        return ServiceHealth(False, f"does not answer at {base} ({type(e).__name__})")
    if response.status_code != 200:
        return ServiceHealth(False, f"answered {response.status_code} at {base}")
    states = [job.get("state") for job in response.json()]
    running, queued = states.count("running"), states.count("queued")
    return ServiceHealth(True, f"answering at {base}: {running} running, {queued} queued")


def check_culler(http: httpx.Client, base: str, token: str, timeout_s: int) -> ServiceHealth:
    """The idle culler is a managed service of the hub: does it have a live process?"""
    response = http.get(
        f"{base}/hub/api/services/idle-culler", headers={"Authorization": f"token {token}"}
    )
    if response.status_code == 404:
        return ServiceHealth(True, "off (cull_idle_timeout is 0)")
    if response.status_code != 200:
        return ServiceHealth(False, f"unknown: the hub answered {response.status_code}")
    if response.json().get("pid"):
        return ServiceHealth(True, f"running: stops servers idle for more than {timeout_s} s")
    return ServiceHealth(False, "not running: the hub will restart it")


class HubRefused(Exception):
    """The hub answered the server listing with an error (a bad token, mostly)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"the hub refused to list servers ({status}): {body}")


def active_servers(http: httpx.Client, base: str, token: str) -> list[tuple[str, dict[str, Any]]]:
    """(user, server model) of every active server, all pages; raises HubRefused."""
    found: list[tuple[str, dict[str, Any]]] = []
    offset: int | None = 0
    while offset is not None:
        response = http.get(
            f"{base}/hub/api/users",
            params={"state": "active", "offset": offset},
            headers={"Authorization": f"token {token}", "Accept": PAGINATED},
        )
        if response.status_code != 200:
            raise HubRefused(response.status_code, _message(response))
        page = response.json()
        for user in page["items"]:
            found.extend((user["name"], server) for server in user.get("servers", {}).values())
        following = (page.get("_pagination") or {}).get("next")
        offset = following["offset"] if following else None
    return found


def _message(response: httpx.Response) -> str:
    """The hub's error ``message`` (its JSON error body), else the start of the text."""
    try:
        return str(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        return one_line(response.text)[:300]


def gpus_by_server(settings: Settings) -> dict[str, list[str]] | None:
    """Server key ('alice/') -> its GPUs, by index where NVML knows them; None if unreadable."""
    try:
        holders = ledger_for(settings).holders()
    except OSError:
        return None  # a ledger only the hub's user may open
    index = {
        d.uuid: d.index
        for node in local_inventory().nodes
        for pool in node.pools
        for d in pool.devices
    }
    held: dict[str, list[str]] = {}
    for uuid, keys in holders.items():
        for key in keys:
            held.setdefault(key, []).append(index.get(uuid, uuid))
    return held


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(iso: str | None) -> str:
    if not iso:
        return "-"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def _state(server: dict[str, Any]) -> str:
    if server.get("ready"):
        return "ready"
    pending = server.get("pending")
    return {"spawn": "starting", "stop": "stopping"}.get(pending or "", pending or "-")


def servers_table(
    servers: list[tuple[str, dict[str, Any]]], gpus: dict[str, list[str]] | None
) -> Table:
    table = Table(title=f"Running servers: {len(servers)}")
    for column in ("User", "Server", "State", "Started", "Last activity", "Environment", "GPUs"):
        table.add_column(column)
    for user, server in sorted(servers, key=lambda s: (s[0], s[1].get("name", ""))):
        key = f"{user}/{server.get('name', '')}"
        held = "?" if gpus is None else ", ".join(gpus.get(key, [])) or "-"
        image = (server.get("user_options") or {}).get("image") or "-"
        if isinstance(image, list):  # a form or launch link stores lists of values
            image = ", ".join(map(str, image)) or "-"
        table.add_row(
            escape(user),
            escape(server.get("name") or "(default)"),
            _state(server),
            _when(server.get("started")),
            _ago(server.get("last_activity")),
            escape(str(image)),
            escape(held),
        )
    return table


def service_lines(checks: list[ServiceCheck]) -> list[str]:
    """One line per platform service; a service that is down is optional: a warning."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for check in checks:
        mark = {True: "[green]ok[/green]  ", False: "[yellow]down[/yellow]", None: "-   "}
        lines.append(f"  {escape(check.name):<{width}}  {mark[check.ok]}  {escape(check.text)}")
    return lines


def status(data_dir: DataDir = None) -> None:
    """Show whether the hub and the catalog answer, and the running servers."""
    settings = settings_from(data_dir)
    out = Console()
    base = settings.reachable_hub_url
    with httpx.Client(timeout=settings.catalog_timeout) as http:
        hub = check_hub(http, base)
        catalog = check_catalog(http, settings.catalog_url)
        for label, check in (("Hub", hub), ("Catalog", catalog)):
            mark = "[green]ok[/green]" if check.ok else "[red]FAIL[/red]"
            out.print(f"{label + ':':<9} {mark}  {escape(check.text)}", soft_wrap=True)
        if not hub.ok:
            out.print("Start it with `tkhub up`.")
            raise typer.Exit(1)
        token = cli_token(settings)
        try:
            culler = check_culler(http, base, token, settings.cull_idle_timeout)
            mark = "[green]ok[/green]" if culler.ok else "[red]FAIL[/red]"
            out.print(f"{'Culler:':<9} {mark}  {escape(culler.text)}", soft_wrap=True)
            synced = read_status(settings.examples_dir)
            mark = "[green]ok[/green]" if synced and synced.ok else "[red]FAIL[/red]"
            out.print(f"{'Examples:':<9} {mark}  {escape(describe(synced))}", soft_wrap=True)
            jobs = check_jobs(http, settings.jobs_url, token)
            mark = "[green]ok[/green]" if jobs.ok else "[red]FAIL[/red]"
            out.print(f"{'Jobs:':<9} {mark}  {escape(jobs.text)}", soft_wrap=True)
            servers = active_servers(http, base, token)
        except HubRefused as e:
            out.print(f"[red]Servers:[/red] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(1) from None
        except httpx.HTTPError as e:
            out.print(f"[red]Servers:[/red] the hub stopped answering ({type(e).__name__})")
            raise typer.Exit(1) from None
    if settings.services:
        out.print("Services (optional: a spawn never waits for them):")
        for line in service_lines(asyncio.run(check_services(settings.services))):
            out.print(line, soft_wrap=True)
    if servers:
        out.print(servers_table(servers, gpus_by_server(settings)))
    else:
        out.print("No servers running.")
    if not catalog.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
