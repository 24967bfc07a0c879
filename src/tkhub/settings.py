"""One settings object for the CLI and the embedded hub.

Values come, in rising priority, from defaults, ``<data_dir>/tkhub.yaml``,
``TKHUB_*`` environment variables, and command-line flags (the CLI passes its
flags as keyword arguments to ``load_settings``). Nothing here is read at import
time: call ``load_settings()`` where settings are needed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
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


ENV_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Variables the spawners set themselves: a service setting one would break servers.
RESERVED_VARIABLES = frozenset(
    {"PATH", "HOME", "USER", "SHELL", "PYTHONPATH", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES",
     "NVIDIA_VISIBLE_DEVICES", "JUPYTER_IMAGE", "JUPYTER_IMAGE_SPEC"}
)  # fmt: skip
RESERVED_PREFIXES = ("JUPYTERHUB_", "TKHUB_", "JPY_")


class ServiceBase(BaseModel):
    """A platform service (MLflow, an LLM gateway, a vector store) users' servers are told
    about through environment variables. Each mode says where secret values come from."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)  # what users see: "MLflow"
    url: str | None = None  # checked by `tkhub status`; shown without credentials
    env: dict[str, str] = Field(default_factory=dict)  # plain values
    secrets: dict[str, Any] = Field(default_factory=dict)  # VAR -> where its value is
    groups: list[str] = Field(default_factory=list)  # empty: every user

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _variables(self) -> ServiceBase:
        both = set(self.env) & set(self.secrets)
        if both:
            raise ValueError(f"{self.name}: {', '.join(sorted(both))} in both env and secrets")
        for name in [*self.env, *self.secrets]:
            problem = variable_problem(name)
            if problem:
                raise ValueError(f"{self.name}: {problem}")
        return self

    @property
    def variables(self) -> list[str]:
        return sorted([*self.env, *self.secrets])


def variable_problem(name: str) -> str | None:
    """Why ``name`` cannot be a service's environment variable, or None."""
    if not ENV_VARIABLE.fullmatch(name):
        return f"{name!r} is not an environment variable name"
    if name in RESERVED_VARIABLES or name.startswith(RESERVED_PREFIXES):
        return f"{name} is set by tkhub itself; choose another variable"
    return None


def services_problem(services: Iterable[ServiceBase]) -> str | None:
    """Names and variables must be unique across services: which one a server gets
    would otherwise depend on the order of the list."""
    names: set[str] = set()
    owner: dict[str, str] = {}
    for service in services:
        if service.name in names:
            return f"two services are named {service.name!r}"
        names.add(service.name)
        for variable in service.variables:
            if variable in owner:
                return f"{variable} is set by both {owner[variable]} and {service.name}"
            owner[variable] = service.name
    return None


class LocalService(ServiceBase):
    """A service in the local mode: a secret is read from a file (mode 0600) at spawn."""

    secrets: dict[str, Path] = Field(default_factory=dict)


class OidcBase(BaseModel):
    """Sign-in through an OpenID Connect provider such as Keycloak (docs/sign-in.md):
    what both modes say alike; each says where the client secret is."""

    model_config = ConfigDict(extra="forbid")

    issuer: str  # https://keycloak.example.org/realms/thinkube
    client_id: str = "tkhub"
    admin_group: str = "tkhub-admins"  # its members are hub and catalog admins
    allowed_groups: list[str] = Field(default_factory=list)  # empty: every account may
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"issuer: {value!r} is not an http(s) URL")
        return value.rstrip("/")


class OidcSettings(OidcBase):
    """The sign-in on this machine: the client secret in a file."""

    client_secret_file: Path | None = None  # none: a public client (PKCE only)


class Settings(BaseSettings):
    """Everything ``tkhub`` needs to run, on one machine or against a cluster."""

    model_config = SettingsConfigDict(env_prefix="TKHUB_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    ip: str = "127.0.0.1"
    port: int = 8000
    hub_api_port: int = 8081
    proxy_api_port: int = 8001
    catalog_port: int = 8011
    jobs_port: int = 8012
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
    services: list[LocalService] = Field(default_factory=list)  # MLflow, LLM gateway, ...
    oidc: OidcSettings | None = None  # sign-in through Keycloak; none: tkhub's passwords

    @field_validator("services")
    @classmethod
    def _unique_services(cls, value: list[LocalService]) -> list[LocalService]:
        problem = services_problem(value)
        if problem:
            raise ValueError(problem)
        return value

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
    def jobs_url(self) -> str:
        """The jobs service, as servers and the CLI on this machine reach it."""
        return f"http://127.0.0.1:{self.jobs_port}/services/jobs"

    @property
    def jobs_database_url(self) -> str:
        """The jobs tables: beside the catalog's in PostgreSQL, else their own SQLite."""
        return self.catalog_database_url or f"sqlite:///{self.state_dir / 'jobs.sqlite'}"

    @property
    def hub_url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def reachable_hub_url(self) -> str:
        """The hub's URL as this machine reaches it (a wildcard address is not one)."""
        if self.ip in ("", "0.0.0.0", "::", "[::]"):
            return f"http://127.0.0.1:{self.port}"
        return self.hub_url

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
    for name, value in given.items():  # a flag for one field of a section keeps the rest
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = {**merged[name], **value}
        else:
            merged[name] = value
    merged["data_dir"] = data_dir
    return Settings.model_validate(merged)
