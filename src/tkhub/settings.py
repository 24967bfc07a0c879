"""One settings object for the CLI and the embedded hub.

Values come, in rising priority, from defaults, ``<data_dir>/tkhub.yaml``,
``TKHUB_*`` environment variables, and command-line flags (the CLI passes its
flags as keyword arguments to ``load_settings``). Nothing here is read at import
time: call ``load_settings()`` where settings are needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CONFIG_FILE_NAME = "tkhub.yaml"
# The start of a system account name useradd accepts, leaving room for the user's part.
ACCOUNT_PREFIX_PATTERN = r"[a-z_][a-z0-9_-]{0,15}"


def default_data_dir() -> Path:
    """/var/lib/tkhub for root (users' accounts must reach their homes), else XDG."""
    if os.geteuid() == 0:
        return Path("/var/lib/tkhub")
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "tkhub"


class RegistrySettings(BaseModel):
    """One OCI registry the catalog syncs Jupyter images from."""

    name: str
    url: str  # https://harbor.example.org
    prefix: str = ""  # repository prefix / Harbor project filter ("thinkube/")
    username: str | None = None
    password_file: Path | None = None  # file holding the password or token (mode 0600)
    password_env: str | None = None  # or an environment variable holding it
    verify_tls: bool = True
    pull_host: str | None = None  # host the cluster pulls from, if not the URL's host
    tags: str = "policy:latest+semver"  # or "glob:<pattern>" / "regex:<pattern>"


class Settings(BaseSettings):
    """Everything ``tkhub`` needs to run, on one machine or against a cluster."""

    model_config = SettingsConfigDict(env_prefix="TKHUB_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    ip: str = "127.0.0.1"
    port: int = 8000
    hub_api_port: int = 8081
    proxy_api_port: int = 8001
    catalog_port: int = 8011
    catalog_host: str = "127.0.0.1"  # in a cluster the catalog pod listens on 0.0.0.0
    catalog_database_url: str | None = None  # default: SQLite in the data dir
    catalog_timeout: float = 5.0
    catalog_sync_interval: int = 300  # seconds between registry syncs; 0 turns it off
    registries: list[RegistrySettings] = Field(default_factory=list)
    harbor_webhook_secret_file: Path | None = None
    cull_idle_timeout: int = 3600  # seconds; idle servers are stopped and give their GPU back
    max_servers_per_gpu: int = 1
    account_prefix: str = Field(default="tk-", pattern=f"^{ACCOUNT_PREFIX_PATTERN}$")  # tk-alice
    log_level: str = "INFO"
    envs_dir: Path | None = None  # tkhub env create's root; default /opt/tkhub/envs as root
    examples_git_url: str | None = None  # examples from this git repository (default: shipped)
    examples_git_ref: str = "main"
    examples_sync_hours: float = Field(default=24.0, ge=0)  # 0: only at start

    # Derived paths: one data directory holds all state.
    @property
    def users_dir(self) -> Path:
        return self.data_dir / "users"

    @property
    def shared_dir(self) -> Path:
        return self.data_dir / "shared"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def examples_dir(self) -> Path:
        """The synced examples repository (``current`` -> the served copy)."""
        return self.shared_dir / "examples-repo"

    @property
    def catalog_url(self) -> str:
        return f"http://127.0.0.1:{self.catalog_port}"

    @property
    def hub_url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def database_url(self) -> str:
        return self.catalog_database_url or f"sqlite:///{self.state_dir / 'catalog.sqlite'}"


def read_config_file(data_dir: Path) -> dict[str, Any]:
    path = data_dir / CONFIG_FILE_NAME
    if not path.exists():
        return {}
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
    return loaded


def load_settings(**overrides: Any) -> Settings:
    """Defaults < config file < environment < explicit overrides (CLI flags)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    data_dir = Path(
        given.get("data_dir") or os.environ.get("TKHUB_DATA_DIR") or default_data_dir()
    ).expanduser()
    from_file = read_config_file(data_dir)
    env_set = Settings()  # environment over defaults
    merged: dict[str, Any] = {**from_file}
    for name in env_set.model_fields_set:
        merged[name] = getattr(env_set, name)
    merged.update(given)
    merged["data_dir"] = data_dir
    return Settings.model_validate(merged)
