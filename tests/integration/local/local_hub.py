"""``tkhub up`` as a user runs it, on free ports, with a data directory under /tmp.

``LocalHub`` is the handle the tests use: the URL, the data directory, the CLI's
token (written by ``tkhub up``), a signed-in browser-like client, and the processes
(the catalog service) a test may pause or kill.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from hubproc import free_port, remove_test_account, terminate

TKHUB = str(Path(sys.executable).parent / "tkhub")


@dataclass
class LocalHub:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    output: Path  # what `tkhub up` printed (and the hub's log)
    catalog_port: int
    jobs_port: int = 0
    users: set[str] = field(default_factory=set)
    with_password: set[str] = field(default_factory=set)

    @property
    def cli_token(self) -> str:
        return (self.data_dir / "secrets" / "cli-token").read_text().strip()

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"token {self.cli_token}"}
        return httpx.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=60, **kw)

    def catalog(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"token {self.cli_token}"}
        url = f"http://127.0.0.1:{self.catalog_port}/api/v1{path}"
        return httpx.request(method, url, headers=headers, timeout=30, **kw)

    def printed(self) -> str:
        return self.output.read_text(errors="replace")

    def add_user(self, name: str) -> None:
        response = self.api("POST", f"/users/{name}")
        assert response.status_code in (201, 409), response.text
        self.users.add(name)

    def spawn(self, user: str, options: dict[str, Any], server: str = "") -> httpx.Response:
        self.users.add(user)
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        return self.api("POST", path, json=options)

    def server(self, user: str, server: str = "") -> dict[str, Any] | None:
        found: dict[str, Any] | None = (
            self.api("GET", f"/users/{user}").json()["servers"].get(server)
        )
        return found

    def wait_ready(self, user: str, server: str = "", timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.server(user, server)
            if found is None:
                raise AssertionError(f"{user}'s server is gone:\n{self.printed()[-4000:]}")
            if found.get("ready"):
                return found
            time.sleep(0.3)
        raise AssertionError(f"{user}'s server not ready in {timeout} s:\n{self.printed()[-4000:]}")

    def stop(self, user: str, server: str = "", timeout: float = 60) -> None:
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        self.api("DELETE", path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server(user, server) is None:
                return
            time.sleep(0.3)
        raise AssertionError(f"{user}'s server did not stop")

    def catalog_pid(self) -> int:
        """The catalog service's process: the one started with this hub's catalog port."""
        wanted = f"TKHUB_CATALOG_PORT={self.catalog_port}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if b"catalog_service" in cmdline and wanted in environ.split(b"\0"):
                return int(entry.name)
        raise AssertionError("the catalog service is not running")

    def sign_in(self, user: str, password: str) -> httpx.Client:
        """A client holding the hub's cookies after the login form, as a browser would."""
        client = httpx.Client(base_url=self.url, timeout=60, follow_redirects=True)
        client.get("/hub/login")
        response = client.post(
            "/hub/login",
            data={"username": user, "password": password, "_xsrf": xsrf(client, "/hub/")},
        )
        assert response.status_code == 200, response.text[-2000:]
        return client


def tkhub(hub: LocalHub, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``tkhub`` command on this hub's data directory."""
    return subprocess.run(
        [TKHUB, *args, "--data-dir", str(hub.data_dir)], capture_output=True, text=True, timeout=120
    )


def signed_in_token(hub: LocalHub, user: str) -> tuple[str, str]:
    """The user's spawn page and a token of theirs, after signing in with a password."""
    if user not in hub.with_password:
        password = hub.data_dir.parent / f"{user}-password"
        password.write_text("a-test-password\n")
        assert tkhub(hub, "users", "add", user, "--password-file", str(password)).returncode == 0
        hub.add_user(user)
        hub.with_password.add(user)
    browser = hub.sign_in(user, "a-test-password")
    try:
        page = " ".join(browser.get("/hub/spawn").text.split())
        made = browser.post(f"/hub/api/users/{user}/tokens", json={"expires_in": 3600},
                            headers={"X-XSRFToken": xsrf(browser, "/hub/")})  # fmt: skip
        return page, made.json()["token"]
    finally:
        browser.close()


def xsrf(client: httpx.Client, path: str) -> str:
    for cookie in client.cookies.jar:
        if cookie.name == "_xsrf" and cookie.path.rstrip("/") == path.rstrip("/"):
            return str(cookie.value)
    raise AssertionError(f"no _xsrf cookie for {path}")


def _wait_ready_line(hub: LocalHub, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "tkhub is ready" in hub.printed():
            return
        if hub.proc.poll() is not None:
            raise AssertionError(f"tkhub up exited ({hub.proc.returncode}):\n{hub.printed()}")
        time.sleep(0.2)
    raise AssertionError(f"tkhub up did not get ready:\n{hub.printed()[-4000:]}")


@contextmanager
def running_tkhub_up(
    *extra: str, root: Path | None = None, keep: bool = False, sigint_ignored: bool = False
) -> Iterator[LocalHub]:
    """``tkhub up`` in ``root`` (a new /tmp directory by default); removed unless ``keep``.

    ``sigint_ignored`` starts it as a background shell or nohup would: SIGINT ignored.
    """
    if root is None:
        root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-up-"))
        root.chmod(0o755)  # users' accounts must reach their homes below it
    data = root / "data"
    port, catalog_port, jobs_port = free_port(), free_port(), free_port()
    args = [
        TKHUB, "up", "--data-dir", str(data), "--port", str(port),
        "--hub-api-port", str(free_port()), "--proxy-api-port", str(free_port()),
        "--catalog-port", str(catalog_port), "--jobs-port", str(jobs_port), *extra,
    ]  # fmt: skip
    output = root / f"up-{port}.log"
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )
    hub = LocalHub(f"http://127.0.0.1:{port}", data, proc, output, catalog_port, jobs_port)
    try:
        _wait_ready_line(hub)
        yield hub
    finally:
        terminate(proc, timeout=60, sig=signal.SIGINT)  # Ctrl-C: servers stop too
        if not keep:
            for user in hub.users | {"admin"}:
                remove_test_account(user, data)
            shutil.rmtree(root, ignore_errors=True)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def first_admin_password(printed: str) -> str:
    found = re.search(r"with password (\S+)", printed)
    assert found, printed
    return found.group(1)
