"""Fixtures for ``tkhub env`` / ``tkhub status`` against a real hub and a real catalog.

- ``hub`` (module): the catalog tests' real JupyterHub + configurable-http-proxy
  (users ``admin``, ``alice``, ... and their tokens), here with a spawner that
  really starts ``jupyterhub-singleuser`` (as this user, homes in the hub's temp
  directory), so ``tkhub status`` has servers to show.
- ``serve(app) -> url``: runs an ASGI app with uvicorn on a free 127.0.0.1 port.
- ``stack``: a tkhub data directory whose ``tkhub.yaml`` points at ``hub`` and at a
  catalog app (``create_app``, SQLite in the data directory) served for this test,
  with the hub admin's token as ``secrets/cli-token`` (mode 0600). See ``Stack``.
- ``tkhub(data_dir, *args) -> Result``: runs the CLI in-process (CliRunner, wide
  terminal).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from hubproc import app_servers, catalog_fixtures, free_port
from typer.testing import CliRunner, Result

from tkhub.catalog.app import create_app
from tkhub.catalog.hub_tokens import make_hub_auth
from tkhub.cli import app as cli_app
from tkhub.settings import load_settings

_hub_module = catalog_fixtures("tkhub_cli_test_hub")
SINGLEUSER = Path(sys.executable).parent / "jupyterhub-singleuser"
# Appended to the catalog hub's config (str.format'ed: braces doubled). Servers run
# as this user, which the default spawner cannot do; root needs --allow-root.
_hub_module.HUB_CONFIG += """
import os
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(os.getcwd(), "home", "{{username}}")
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root"]
c.Spawner.default_url = "/tree"
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
""".replace("{singleuser!r}", repr(str(SINGLEUSER)))
hub = _hub_module.hub


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    with app_servers() as start:
        yield start


@dataclass
class Stack:
    data_dir: Path
    hub: Any  # the catalog conftest's Hub
    catalog_url: str

    @staticmethod
    def unused_port() -> int:
        return int(free_port())

    def configure(self, **settings: Any) -> None:
        """Merge ``settings`` into the data directory's tkhub.yaml."""
        path = self.data_dir / "tkhub.yaml"
        current = yaml.safe_load(path.read_text()) if path.exists() else {}
        path.write_text(yaml.safe_dump({**(current or {}), **settings}))


@pytest.fixture
def stack(hub: Any, serve: Callable[[Any], str]) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-cli-data-"))
    data = Stack(root, hub, "")
    data.configure(port=urlsplit(hub.url).port)
    token = root / "secrets" / "cli-token"
    token.parent.mkdir(mode=0o700)
    token.write_text(hub.tokens["admin"] + "\n")
    token.chmod(0o600)
    settings = load_settings(data_dir=root)
    catalog = create_app(
        settings, hub_auth=make_hub_auth(hub.api_url, hub.service_token), service_prefix=""
    )
    data.catalog_url = serve(catalog)
    data.configure(catalog_port=urlsplit(data.catalog_url).port)
    yield data
    catalog.state.engine.dispose()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tkhub() -> Callable[..., Result]:
    def run(data_dir: Path, *args: str) -> Result:
        argv = [*args, "--data-dir", str(data_dir)]
        return CliRunner().invoke(cli_app, argv, env={"COLUMNS": "250"})  # one row a line

    return run
