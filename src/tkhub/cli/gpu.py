"""``tkhub gpu``: this machine's GPUs, what is free, and which server holds each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tkhub.gpu.model import Inventory
from tkhub.local.inventory import local_inventory
from tkhub.local.ledger import ledger_for
from tkhub.settings import load_settings

app = typer.Typer(no_args_is_help=False, invoke_without_command=True)
err = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="tkhub data directory (holds the GPU ledger).")
]


def _table(inventory: Inventory) -> Table:
    table = Table(title=f"GPUs: {inventory.free} of {inventory.total} free")
    for column in ("Node", "GPU", "Model", "Memory used", "Util", "Free", "Held by"):
        table.add_column(column)
    for node in inventory.nodes:
        for pool in node.pools:
            for d in pool.devices:
                held = len(d.holders) >= pool.shared_replicas
                table.add_row(
                    node.name,
                    d.index,
                    d.model,
                    f"{d.memory_used_mib}/{d.memory_total_mib} MiB",
                    "-" if d.utilization_pct is None else f"{d.utilization_pct}%",
                    "no" if held or not node.schedulable else "yes",
                    ", ".join(d.holders) or "-",
                )
    return table


@app.callback()
def show(
    ctx: typer.Context,
    data_dir: DataDir = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the inventory as GET /api/v1/nodes/gpu does.")
    ] = False,
) -> None:
    """Show the GPU inventory: free/total per device and who holds what."""
    if ctx.invoked_subcommand:
        return
    settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    inventory = local_inventory(ledger_for(settings))
    if as_json:
        typer.echo(json.dumps(inventory.to_dict(), indent=2))
        return
    if inventory.total == 0:
        Console().print(f"No GPUs: {inventory.note or 'none found'}. Servers run on CPU only.")
        return
    Console().print(_table(inventory))


@app.command()
def release(
    server: Annotated[str, typer.Argument(help="Server key as the ledger shows it ('alice/').")],
    data_dir: DataDir = None,
) -> None:
    """Free the GPUs a server holds (for a server that died without stopping)."""
    settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    ledger = ledger_for(settings)
    held = ledger.held_by(server)
    if not held:
        err.print(f"[red]{server} holds no GPU.[/red]")
        raise typer.Exit(1)
    ledger.release(server)
    Console().print(f"Released {len(held)} GPU(s) held by {server}.")
