"""Fixtures for the spawn page in a real browser against a real hub.

- ``page_hub`` (module): JupyterHub with tkhub's LocalSpawner, configurable-http-proxy
  and the catalog service (managed service ``catalog``) on free 127.0.0.1 ports, data
  under /tmp (0755), our templates, two GPUs faked at NVML (the hardware boundary) in
  the hub process, users ``alice`` and ``admin`` (dummy authenticator, any password), an admin API
  token, and catalog entries added through the catalog API; see ``PageHub``.
  Servers it started are stopped and the directory removed afterwards.
- ``browser`` (module): Debian's Chromium (``/usr/bin/chromium``), headless, driven by
  Playwright; fails with a clear message where Chromium is not installed.
- ``page``: a fresh browser context and page per test.

The hub's config, ``PageHub`` and ``sign_in(page, hub)`` are in ``browser_hub.py``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from browser_hub import HERE, HUB_CONFIG, VENV_PYTHON, PageHub, add_entries
from chromium import launched_chromium
from hubproc import (
    TEST_ACCOUNT_PREFIX,
    free_port,
    hub_base_config,
    remove_test_account,
    terminate,
    wait_for,
)

from tkhub.spawnpage.render import TEMPLATES_DIR


@pytest.fixture(scope="module")
def page_hub() -> Iterator[PageHub]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-page-"))
    root.chmod(0o755)
    data = root / "data"
    data.mkdir()
    port, hub_port, catalog_port = free_port(), free_port(), free_port()
    admin_token = secrets.token_hex(16)
    (root / "jupyterhub_config.py").write_text(
        HUB_CONFIG.format(
            here=str(HERE),
            base=hub_base_config(port, hub_port, free_port()),
            templates=str(TEMPLATES_DIR),
            catalog_port=catalog_port,
            python=VENV_PYTHON,
            data=str(data),
            service=secrets.token_hex(16),
            admin_token=admin_token,
            account_prefix=TEST_ACCOUNT_PREFIX,
        )
    )
    env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16)}
    log_path = root / "hub.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [VENV_PYTHON, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    hub = PageHub(
        url=f"http://127.0.0.1:{port}",
        api_url=f"http://127.0.0.1:{hub_port}/hub/api",
        catalog_url=f"http://127.0.0.1:{catalog_port}",
        admin_token=admin_token,
        data_dir=data,
        log=log_path,
    )
    try:
        wait_for(hub.api_url + "/", proc, log_path)
        wait_for(hub.catalog_url + "/health", proc, log_path)
        add_entries(hub)
        yield hub
    finally:
        if proc.poll() is None:  # a hub that never started must not hide why
            for user in ("alice", "admin"):
                hub.stop_servers(user)
        terminate(proc)
        log.close()
        for user in ("alice", "admin"):  # the system accounts LocalSpawner made as root
            remove_test_account(user, data)
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with launched_chromium() as launched:
        yield launched


@pytest_asyncio.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    yield page
    await context.close()
