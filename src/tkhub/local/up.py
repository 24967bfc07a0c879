"""``tkhub up``: the whole local mode in the foreground, stopped cleanly by Ctrl-C/SIGTERM.

Checks what would make the hub fail later (the proxy binary, busy ports, a data
directory users cannot enter) and says so in one line; creates the first admin
account; frees GPUs held by servers that died while no hub ran; then becomes
``tkhub.local.supervisor``, which runs JupyterHub (with the catalog and idle culler as its
services) and hands it the signals it receives.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tkhub.files import write_atomic
from tkhub.local import datadir_lock
from tkhub.local.accounts import running_as_root, unreachable_part
from tkhub.local.hub_config import prepare_data_dir, proxy_command
from tkhub.local.ledger import ledger_for
from tkhub.local.password_auth import UserStore, generate_password, users_file
from tkhub.local.signin import SigninError, check_signin, save_signin
from tkhub.services import secret_file_problem
from tkhub.settings import Settings

HUB_CONFIG_FILE = "jupyterhub_config.py"
RUNNING_FILE = "running.json"  # the ports of the running `tkhub up`, for the other commands
RUNNING_KEYS = ("ip", "port", "hub_api_port", "proxy_api_port", "catalog_port", "jobs_port")
INITIAL_PASSWORD_FILE = "initial-admin-password"
FIRST_ADMIN = "admin"
NOBODY = 65534  # an account with no rights: what every user's account can reach, at least

HUB_CONFIG = """\
# Written by `tkhub up`; edits are overwritten. Settings live in tkhub.yaml.
from tkhub.settings import load_settings
from tkhub.local.hub_config import configure

configure(get_config(), load_settings())  # noqa: F821
"""


class UpError(Exception):
    """Something ``tkhub up`` needs is missing; ``str()`` says what and how to fix it."""


@dataclass(frozen=True)
class FirstAdmin:
    name: str
    password: str
    password_file: Path


def check_ports(settings: Settings) -> None:
    """Every port tkhub listens on must be free: otherwise a service would fail later."""
    wanted = [
        (settings.ip, settings.port, "--port"),
        ("127.0.0.1", settings.hub_api_port, "--hub-api-port"),
        ("127.0.0.1", settings.proxy_api_port, "--proxy-api-port"),
        ("127.0.0.1", settings.catalog_port, "--catalog-port"),
        ("127.0.0.1", settings.jobs_port, "--jobs-port"),
    ]
    for host, port, flag in wanted:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                raise UpError(
                    f"port {port} on {host} is in use ({e.strerror}): is tkhub already "
                    f"running? Stop it, or choose another port with {flag}."
                ) from e


def ensure_first_admin(settings: Settings) -> FirstAdmin | None:
    """Create ``admin`` with a generated password when there is no account at all."""
    store = UserStore(users_file(settings))
    if store.load():
        return None
    password = generate_password()
    store.add(FIRST_ADMIN, password, admin=True)
    path = settings.secrets_dir / INITIAL_PASSWORD_FILE
    write_atomic(path, password + "\n")
    return FirstAdmin(FIRST_ADMIN, password, path)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reconcile_gpus(settings: Settings) -> list[str]:
    """Free GPUs still booked for servers and jobs whose process is gone; returns those.
    Run before the hub starts, so nothing allocates meanwhile."""
    return ledger_for(settings).reconcile()


def hub_environment(settings: Settings, overrides: dict[str, Any]) -> dict[str, str]:
    """The hub reads its settings again: pass the command-line ones down as TKHUB_*."""
    env = dict(os.environ)
    env["TKHUB_DATA_DIR"] = str(settings.data_dir)
    for name, value in overrides.items():
        if value is not None:
            text = json.dumps(value) if isinstance(value, dict | list) else str(value)
            env[f"TKHUB_{name.upper()}"] = text
    proxy = proxy_command()
    if proxy:  # the hub's PATH must find the proxy even from a plain shell
        env["PATH"] = f"{Path(proxy).parent}:{env.get('PATH', '')}"
    return env


def write_running(settings: Settings) -> Path:
    """Record where this ``tkhub up`` listens, so ``tkhub status``/``env`` find it."""
    path = settings.state_dir / RUNNING_FILE
    record = {key: getattr(settings, key) for key in RUNNING_KEYS} | {"pid": os.getpid()}
    path.write_text(json.dumps(record))
    return path


def with_running(settings: Settings) -> Settings:
    """``settings`` with the ports of a ``tkhub up`` running on the same data directory."""
    try:
        record = json.loads((settings.state_dir / RUNNING_FILE).read_text())
    except (OSError, ValueError):
        return settings
    if not _alive(record.get("pid")):
        return settings
    return settings.model_copy(update={k: record[k] for k in RUNNING_KEYS if k in record})


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def hold_data_dir(settings: Settings) -> str | None:
    """Take the data directory for this run (before anything is started or written).

    Returns a note when a record left by a run that ended was taken over.
    """
    try:
        _, note = datadir_lock.acquire(settings.state_dir, settings.hub_url)
    except datadir_lock.DataDirInUse as e:
        raise UpError(f"{e}; stop it first, or use another --data-dir") from None
    except PermissionError as e:
        raise UpError(f"cannot use the data directory {settings.data_dir}: {e.strerror}") from e
    return note


def check_service_secrets(settings: Settings) -> None:
    """Every service's secret file exists and only its owner may read it."""
    for service in settings.services:
        for variable, path in service.secrets.items():
            problem = secret_file_problem(path)
            if problem:
                raise UpError(f"services: {service.name}: {variable}: {problem}")


def prepare(settings: Settings) -> tuple[Path, FirstAdmin | None, list[str]]:
    """Everything before the hub starts; raises ``UpError`` with a one-line reason."""
    check_service_secrets(settings)
    try:
        endpoints = check_signin(settings)
    except SigninError as e:
        raise UpError(f"sign-in: {e}") from e
    if proxy_command() is None:
        raise UpError(
            "configurable-http-proxy was not found: run `bash scripts/setup.sh up`, "
            "or `npm install -g configurable-http-proxy`."
        )
    if running_as_root():
        blocked = unreachable_part(_existing(settings.users_dir), NOBODY, [])
        if blocked is not None:
            raise UpError(
                f"users' servers could not reach their homes in {settings.users_dir}: "
                f"{blocked} is private. Choose a data directory other accounts can "
                "enter, such as /var/lib/tkhub (--data-dir)."
            )
    note = hold_data_dir(settings)  # before anything is started or written
    if note:
        print(note)
    check_ports(settings)
    try:
        prepare_data_dir(settings)
    except PermissionError as e:
        raise UpError(f"cannot use the data directory {settings.data_dir}: {e.strerror}") from e
    signin = save_signin(settings, endpoints)
    if signin:
        print(signin)
    admin = None if settings.oidc else ensure_first_admin(settings)  # no passwords then
    freed = reconcile_gpus(settings)
    config = settings.state_dir / HUB_CONFIG_FILE
    config.write_text(HUB_CONFIG)
    return config, admin, freed


def interpreter_warning() -> str | None:
    """As root, whether users' accounts can run this Python ("Python (this machine)")."""
    if not running_as_root():
        return None
    blocked = unreachable_part(Path(sys.executable), NOBODY, [])
    if blocked is None:
        return None
    return (
        f"users' accounts cannot run this Python ({sys.executable}): {blocked} is "
        "private, so 'Python (this machine)' will be refused at spawn. Install tkhub "
        "where all users can read it (e.g. /opt/tkhub), or register another "
        "environment with `tkhub env add`."
    )


def exec_supervisor(settings: Settings, overrides: dict[str, Any], config: Path) -> None:
    """Become ``tkhub.local.supervisor`` (same pid), which runs the hub until it exits."""
    running = write_running(settings)
    argv = [
        sys.executable, "-m", "tkhub.local.supervisor", str(config), settings.hub_url,
        f"http://127.0.0.1:{settings.hub_api_port}", settings.catalog_url, str(running),
    ]  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, hub_environment(settings, overrides))
