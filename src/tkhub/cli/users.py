"""``tkhub users``: the local mode's sign-in accounts (``<data>/secrets/users.json``).

The commands edit the accounts file directly, so they work with or without the hub
running: the hub reads the file at each sign-in.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tkhub.cli.common import DataDir, fail, settings_from
from tkhub.local.password_auth import UserStore, generate_password, normalize, users_file

app = typer.Typer(no_args_is_help=True)

MAX_NAME = 255
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Read the password from the first line of this file (default: generate one).",
    ),
]
Name = Annotated[str, typer.Argument(help="Account name (stored in lowercase).")]


def checked_name(name: str) -> str:
    """The name as the hub will know it; exit 2 with the reason if it cannot be one."""
    try:
        name = normalize(name)
    except ValueError as e:
        fail(str(e), 2)
    if len(name) > MAX_NAME:
        fail(f"username: at most {MAX_NAME} characters, got {len(name)}", 2)
    # '/' would split the hub's URLs (/user/NAME/...); spaces and control
    # characters cannot be typed back at the sign-in form.
    if "/" in name:
        fail(f"username: {name!r} must not contain '/'", 2)
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in name):
        fail(f"username: {name!r} must not contain spaces or control characters", 2)
    return name


def _password(password_file: Path | None) -> tuple[str, bool]:
    """(password, generated?): the file's first line, or a new random one."""
    if password_file is None:
        return generate_password(), True
    try:
        lines = password_file.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read the password file {password_file}: {e}")
    password = lines[0] if lines else ""
    if not password.strip():
        fail(f"the password file {password_file} has an empty first line")
    return password, False


def _store(data_dir: Path | None) -> UserStore:
    return UserStore(users_file(settings_from(data_dir)))


def _load(store: UserStore) -> dict[str, dict[str, Any]]:
    try:
        return store.load()
    except (OSError, ValueError) as e:
        fail(f"cannot read the accounts file {store.path} ({type(e).__name__}: {e})")


def _change(store: UserStore, change: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Apply a UserStore change; its KeyError (exists / missing) becomes the message."""
    _load(store)  # a broken or unreadable file: say so before trying to change it
    try:
        change(*args, **kwargs)
    except KeyError as e:
        fail(str(e.args[0]))
    except OSError as e:
        fail(f"cannot write the accounts file {store.path}: {e.strerror or e}")


def _announce(name: str, password: str, generated: bool) -> None:
    if generated:  # shown once: only its hash is stored
        typer.echo(f"Password for {name}: {password}")


@app.command()
def add(
    name: Name,
    admin: Annotated[bool, typer.Option("--admin", help="Make the account a hub admin.")] = False,
    password_file: PasswordFile = None,
    data_dir: DataDir = None,
) -> None:
    """Create an account; prints the password when it was generated."""
    name = checked_name(name)
    store = _store(data_dir)
    if name in _load(store):
        fail(f"user {name!r} already exists (change its password with `tkhub users passwd`)")
    password, generated = _password(password_file)
    _change(store, store.add, name, password, admin=admin)
    typer.echo(f"Added {'admin ' if admin else ''}user {name}.")
    _announce(name, password, generated)


@app.command()
def passwd(name: Name, password_file: PasswordFile = None, data_dir: DataDir = None) -> None:
    """Set a new password (generated unless --password-file is given)."""
    name = checked_name(name)
    store = _store(data_dir)
    if name not in _load(store):
        fail(f"there is no user {name!r}")
    password, generated = _password(password_file)
    _change(store, store.set_password, name, password)
    typer.echo(f"Changed the password of {name}.")
    _announce(name, password, generated)


@app.command()
def remove(name: Name, data_dir: DataDir = None) -> None:
    """Delete an account: it can no longer sign in (its files stay)."""
    name = checked_name(name)
    store = _store(data_dir)
    _change(store, store.remove, name)
    typer.echo(f"Removed user {name}.")


@app.command("list")
def list_users(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the accounts and which are admins."""
    store = _store(data_dir)
    users = _load(store)
    if as_json:
        rows = [{"name": n, "admin": bool(a.get("admin"))} for n, a in sorted(users.items())]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not users:
        typer.echo("No accounts yet: add one with `tkhub users add NAME`.")
        return
    table = Table(title=f"Accounts: {len(users)}")
    table.add_column("Name")
    table.add_column("Admin")
    for name, account in sorted(users.items()):
        table.add_row(escape(name), "yes" if account.get("admin") else "")
    Console().print(table)
