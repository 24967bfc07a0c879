"""Fixtures for the catalog integration tests (real PostgreSQL, real JupyterHub).

- ``postgres_url`` (session): a throwaway PostgreSQL 15 cluster (Debian's
  ``initdb``/``pg_ctl`` run as the ``postgres`` system user) on 127.0.0.1 and a
  free port; yields a ``postgresql+psycopg://`` URL of a fresh database. Fails
  with a clear message when the binaries are missing.
- ``db_url`` (parametrized: sqlite, postgresql): a fresh empty database per test.
- ``hub`` (module): a real JupyterHub + configurable-http-proxy with users
  ``admin`` (admin), ``alice`` (group ``physics``), ``writer`` (scope
  ``custom:tkhub-catalog:admin``) and their API tokens; see ``Hub``.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hubproc import free_port, hub_base_config, terminate, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REPO = Path(__file__).resolve().parents[3]
_db_counter = itertools.count()


def _as_postgres(*args: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return list(args)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[tuple[str, int]]:
    initdb = PG_BIN / "initdb"
    if not initdb.exists():
        pytest.fail(
            f"PostgreSQL 15 is not installed ({initdb} missing): apt-get install postgresql"
        )
    root = tempfile.mkdtemp(dir="/tmp", prefix="tkhub-pg-")
    os.chmod(root, 0o755)
    data, sockets = Path(root) / "data", Path(root) / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres(str(initdb), "-D", str(data), "-A", "trust", "-U", "postgres"),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(Path(root) / "log"),
            "start",
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield root, port
    finally:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: tuple[str, int]) -> str:
    import psycopg

    _, port = postgres_server
    name = f"tkhub_{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(
        f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgresql":
        yield request.getfixturevalue("postgres_url")
        return
    root = tempfile.mkdtemp(dir="/tmp", prefix="tkhub-sqlite-")
    yield f"sqlite:///{root}/catalog.sqlite"
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Hub:
    url: str  # http://127.0.0.1:PORT (the proxy)
    api_url: str  # http://127.0.0.1:PORT/hub/api (the hub itself)
    service_token: str
    tokens: dict[str, str] = field(default_factory=dict)


HUB_CONFIG = """
{base}c.Authenticator.admin_users = {{"admin"}}
c.Authenticator.allowed_users = {{"alice", "writer", "bob"}}
c.JupyterHub.services = [{{"name": "catalog", "api_token": {service!r}}}]
c.JupyterHub.custom_scopes = {{
    "custom:tkhub-catalog:admin": {{"description": "write the tkhub image catalog"}},
}}
c.JupyterHub.load_groups = {{"physics": {{"users": ["alice"]}}}}
c.JupyterHub.load_roles = [
    {{"name": "catalog-writer", "scopes": ["custom:tkhub-catalog:admin"], "users": ["writer"]}},
]
c.JupyterHub.api_tokens = {tokens!r}
"""


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    root = tempfile.mkdtemp(dir="/tmp", prefix="tkhub-hub-")
    port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
    tokens = {name: secrets.token_hex(16) for name in ("admin", "alice", "writer", "bob")}
    service = secrets.token_hex(16)
    Path(root, "jupyterhub_config.py").write_text(
        HUB_CONFIG.format(
            base=hub_base_config(port, hub_port, proxy_api_port),
            service=service,
            tokens={t: n for n, t in tokens.items()},
        )
    )
    env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16)}
    log = open(Path(root) / "hub.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api_url = f"http://127.0.0.1:{hub_port}/hub/api"
    try:
        wait_for(api_url, proc, Path(root) / "hub.log")
        yield Hub(f"http://127.0.0.1:{port}", api_url, service, tokens)
    finally:
        terminate(proc)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
