"""``configure(c, settings)``: JupyterHub as tkhub's local mode runs it.

One data directory holds everything (``tkhub.settings.Settings``)::

    <data>/users/     users' homes (0711: reachable, not listable)
    <data>/shared/    datasets and models shared by all users
    <data>/state/     hub and catalog databases, GPU ledger (0700)
    <data>/secrets/   cookie secret, tokens, password file (0700, files 0600)

The hub binds to ``settings.ip`` (127.0.0.1 by default) behind configurable-http-proxy;
the catalog and jupyterhub-idle-culler run as hub-managed services, and the
``tkhub`` command reaches the hub and the catalog with a token of its own.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from tkhub.catalog.hub_tokens import (
    CATALOG_ADMIN_SCOPE,
    CATALOG_ADMIN_SCOPE_DESCRIPTION,
    CATALOG_READ_ALL_SCOPE,
    CATALOG_READ_ALL_SCOPE_DESCRIPTION,
)
from tkhub.jobs import JOBS_SERVICE, SERVER_TOKEN_SCOPES
from tkhub.layout import DEFAULT_URL
from tkhub.local.secrets import CATALOG_TOKEN, CLI_TOKEN, PROXY_TOKEN, ensure_secret
from tkhub.local.signin import configure_signin
from tkhub.local.spawner import LocalSpawner
from tkhub.settings import Settings
from tkhub.spawnpage.render import use_hub_templates

CATALOG_SERVICE = "catalog"
CULLER_SERVICE = "idle-culler"
CLI_SERVICE = "tkhub-cli"
EXAMPLES_SERVICE = "examples-sync"
PROXY = "configurable-http-proxy"

CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
CLI_SCOPES = [
    "admin:users",
    "admin:servers",
    "list:users",
    "read:users",
    "read:services",
    CATALOG_ADMIN_SCOPE,
]


def proxy_command() -> str | None:
    """configurable-http-proxy on PATH, or in node_modules beside the virtualenv."""
    beside_venv = Path(sys.prefix).parent / "node_modules" / ".bin" / PROXY
    if beside_venv.exists():
        return str(beside_venv)
    return shutil.which(PROXY)


def prepare_data_dir(settings: Settings) -> None:
    """Create the data directory tree with the modes above; idempotent."""
    for path, mode in (
        (settings.data_dir, 0o711),
        (settings.users_dir, 0o711),
        (settings.shared_dir, 0o755),
        (settings.state_dir, 0o700),
        (settings.secrets_dir, 0o700),
    ):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)


def catalog_environment(settings: Settings) -> dict[str, str]:
    """The settings the catalog service needs, as its ``TKHUB_*`` variables."""
    env = {
        "TKHUB_DATA_DIR": str(settings.data_dir),
        "TKHUB_CATALOG_HOST": settings.catalog_host,
        "TKHUB_CATALOG_PORT": str(settings.catalog_port),
        "TKHUB_HUB_API_PORT": str(settings.hub_api_port),
        "TKHUB_CATALOG_SYNC_INTERVAL": str(settings.catalog_sync_interval),
        "TKHUB_MAX_SERVERS_PER_GPU": str(settings.max_servers_per_gpu),
        "TKHUB_LOG_LEVEL": settings.log_level,
    }
    if settings.catalog_database_url:
        env["TKHUB_CATALOG_DATABASE_URL"] = settings.catalog_database_url
    # The service's interpreter finds its own packages; PATH is for helpers it runs.
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    return env


def _services(
    settings: Settings, catalog_token: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    services: list[dict[str, Any]] = [
        {
            "name": CATALOG_SERVICE,
            "url": settings.catalog_url,
            "command": [sys.executable, "-m", "tkhub.local.catalog_service"],
            "api_token": catalog_token,
            "environment": catalog_environment(settings),
        },
        {"name": CLI_SERVICE, "api_token": ensure_secret(settings, CLI_TOKEN)},
        {
            "name": JOBS_SERVICE,
            "url": f"http://127.0.0.1:{settings.jobs_port}",
            "command": [sys.executable, "-m", "tkhub.local.jobs_service"],
            "environment": {
                **catalog_environment(settings),
                "TKHUB_JOBS_PORT": str(settings.jobs_port),
                "TKHUB_ACCOUNT_PREFIX": settings.account_prefix,
                "TKHUB_CATALOG_TIMEOUT": str(settings.catalog_timeout),
            },
            "oauth_no_confirm": True,
        },
        {
            "name": EXAMPLES_SERVICE,
            "command": [sys.executable, "-m", "tkhub.local.examples_service"],
            "environment": {
                "TKHUB_DATA_DIR": str(settings.data_dir),
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),  # git
            },
        },
    ]
    roles: list[dict[str, Any]] = [
        {"name": "user", "scopes": ["self", "access:services"]},
        {"name": CLI_SERVICE, "scopes": CLI_SCOPES, "services": [CLI_SERVICE]},
        # its token is the spawners' and the jobs service's: they filter entries per user
        {
            "name": CATALOG_SERVICE,
            "scopes": [CATALOG_READ_ALL_SCOPE],
            "services": [CATALOG_SERVICE],
        },
    ]
    if settings.cull_idle_timeout > 0:
        services.append(
            {
                "name": CULLER_SERVICE,
                "command": [
                    sys.executable,
                    "-m",
                    "jupyterhub_idle_culler",
                    f"--timeout={settings.cull_idle_timeout}",
                    f"--cull-every={min(300, max(10, settings.cull_idle_timeout // 4))}",
                ],
            }
        )
        roles.append(
            {"name": CULLER_SERVICE, "scopes": CULLER_SCOPES, "services": [CULLER_SERVICE]}
        )
    return services, roles


def configure(c: Any, settings: Settings) -> None:
    """Fill the traitlets config ``c`` of the local-mode hub from ``settings``."""
    prepare_data_dir(settings)
    state, secrets = settings.state_dir, settings.secrets_dir

    c.JupyterHub.ip = settings.ip
    c.JupyterHub.port = settings.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings.hub_api_port
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(secrets / "jupyterhub_cookie_secret")
    use_hub_templates(c)
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.log_level = settings.log_level

    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    c.ConfigurableHTTPProxy.auth_token = ensure_secret(settings, PROXY_TOKEN)
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    command = proxy_command()
    if command:
        c.ConfigurableHTTPProxy.command = [command]

    configure_signin(c, settings)

    c.JupyterHub.spawner_class = "tkhub-local"
    c.LocalSpawner.data_dir = str(settings.data_dir)
    c.LocalSpawner.catalog_url = settings.catalog_url
    catalog_token = ensure_secret(settings, CATALOG_TOKEN)
    c.LocalSpawner.catalog_token = catalog_token
    c.LocalSpawner.catalog_timeout = settings.catalog_timeout
    c.LocalSpawner.max_servers_per_gpu = settings.max_servers_per_gpu
    c.LocalSpawner.account_prefix = settings.account_prefix
    # Names and file paths only: the values are read from the files at each spawn.
    c.LocalSpawner.platform_services = [s.model_dump(mode="json") for s in settings.services]
    c.Spawner.ip = "127.0.0.1"
    c.Spawner.default_url = DEFAULT_URL
    c.Spawner.http_timeout = 60
    c.Spawner.start_timeout = 120
    # A server's own token may use the jobs service (`tkhub jobs` in a terminal).
    c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES
    c.LocalSpawner.jobs_url = settings.jobs_url

    services, roles = _services(settings, catalog_token)
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles
    c.JupyterHub.custom_scopes = {
        CATALOG_ADMIN_SCOPE: {"description": CATALOG_ADMIN_SCOPE_DESCRIPTION},
        CATALOG_READ_ALL_SCOPE: {"description": CATALOG_READ_ALL_SCOPE_DESCRIPTION},
    }
    # Bad configuration fails here, when the hub starts, naming the trait.
    LocalSpawner(config=c).check_config()
