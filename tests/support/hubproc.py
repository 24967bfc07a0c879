"""Running real servers for the tests: free ports, the proxy binary, waiting, stopping.

Shared by every integration test directory (``pythonpath`` in pyproject.toml puts
this directory on ``sys.path``) and by the benchmarks that reuse their fixtures.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
PROXY = "configurable-http-proxy"


_handed_out: set[int] = set()


def free_port() -> int:
    """A free 127.0.0.1 port, never one this process handed out before.

    The kernel may give a just-closed port again at once: two of them in one hub's
    config (public and proxy API port alike) would keep it from starting.
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def proxy_binary() -> str:
    """The repository's configurable-http-proxy (npm install), else one on PATH."""
    local = REPO / "node_modules" / ".bin" / PROXY
    found = str(local) if local.exists() else shutil.which(PROXY)
    if not found:
        pytest.fail(f"{PROXY} not found (npm install in the repository root)")
    return found


def wait_for(
    url: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    *,
    timeout: float = 90,
    ready: Callable[[int], bool] = lambda status: status == 200,
) -> None:
    """Poll ``url`` until ``ready(status)``; fail with the log's end if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if ready(httpx.get(url, timeout=1).status_code):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer in {timeout:g} s:\n{log.read_text()[-4000:]}")


def terminate(
    proc: subprocess.Popen[bytes], timeout: float = 20, sig: int = signal.SIGTERM
) -> None:
    """``sig`` (SIGTERM), then SIGKILL if it has not exited within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


HUB_BASE_CONFIG = """\
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.cookie_secret_file = "cookie_secret"
c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
"""


def hub_base_config(port: int, hub_port: int, proxy_api_port: int) -> str:
    """The start of a test hub's config: loopback ports, the proxy, dummy sign-in, files."""
    return HUB_BASE_CONFIG.format(
        port=port, hub_port=hub_port, proxy_api_port=proxy_api_port, proxy=proxy_binary()
    )


# System accounts of this run's hubs: a prefix of their own (``tkhub up`` and
# load_settings read it from the environment), so a tkhub installed on this
# machine, with its tk-admin, is never touched by the tests.
TEST_ACCOUNT_PREFIX = os.environ.setdefault("TKHUB_ACCOUNT_PREFIX", f"tt{secrets.token_hex(2)}-")


def account_of(hub_username: str) -> str:
    from tkhub.local.accounts import system_account_name

    return system_account_name(hub_username, TEST_ACCOUNT_PREFIX)


def remove_test_account(hub_username: str, data_dir: Path) -> None:
    """Remove the system account a test hub on ``data_dir`` made, with its processes.

    Only an account that carries that hub's install marker is touched. A server
    still exiting when the hub stopped would make ``userdel`` refuse.
    """
    from tkhub.local.accounts import AccountError, AccountNotOurs, install_marker, remove_account

    account, marker = account_of(hub_username), install_marker(data_dir)
    for _ in range(3):
        try:
            remove_account(account, marker)
            return
        except AccountNotOurs:
            return
        except AccountError:
            subprocess.run(["pkill", "-KILL", "-u", account], check=False, capture_output=True)
            time.sleep(0.5)
    remove_account(account, marker)


@contextmanager
def app_servers() -> Iterator[Callable[[Any], str]]:
    """``start(app) -> base URL``: ASGI apps on real uvicorn servers in threads, stopped after."""
    import uvicorn

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> str:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the ASGI app did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for server, thread in servers:
            server.should_exit = True
            thread.join(10)


def catalog_fixtures(module_name: str) -> ModuleType:
    """The catalog tests' conftest as a private module (their real hub, defined once).

    Each user gets its own copy under ``module_name``, so it may extend the copy's
    hub config without touching the catalog tests.
    """
    path = REPO / "tests" / "integration" / "catalog" / "conftest.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
