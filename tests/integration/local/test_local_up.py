"""``tkhub up`` end to end, as a new user meets it: sign in, pick, land in JupyterLab.

One ``tkhub up`` (real JupyterHub, proxy, catalog service, idle culler, LocalSpawner)
serves the whole module; the last test stops it with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from hubproc import account_of, remove_test_account
from local_hub import TKHUB, LocalHub, first_admin_password, running_tkhub_up, xsrf

from tkhub.gpu import nvml
from tkhub.layout import escape_username
from tkhub.local.password_auth import UserStore

NOTEBOOK = {"type": "notebook", "content": {"cells": [], "metadata": {}, "nbformat": 4,
            "nbformat_minor": 5}}  # fmt: skip


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-up-"))
    root.chmod(0o755)  # users' accounts must reach their homes below it
    try:
        with running_tkhub_up(root=root, keep=True) as running:
            yield running
    finally:
        for user in (
            "admin",
            "bob",
            "carol",
            "dora",
            "erin",
            "frank",
            "gina",
            "hank",
            "zoë.o'neil",
        ):
            remove_test_account(user, root / "data")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def admin(hub: LocalHub) -> httpx.Client:
    client = hub.sign_in("admin", first_admin_password(hub.printed()))
    yield client
    client.close()


def has_gpu() -> bool:
    try:
        return bool(nvml.read_devices())
    except nvml.NvmlUnavailable:
        return False


def refused(hub: LocalHub, user: str, options: dict) -> str:
    """Spawn through the REST API; return the hub's message for the refused spawn."""
    response = hub.spawn(user, options)
    assert response.status_code >= 400, response.text
    assert hub.server(user) is None  # nothing half-started
    return str(response.json()["message"])


def test_first_start_prints_the_admin_password_once_and_keeps_secrets_private(hub: LocalHub):
    printed = hub.printed()
    password = first_admin_password(printed)
    assert printed.count(password) == 1
    secrets = hub.data_dir / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for name in ("users.json", "initial-admin-password", "cli-token", "catalog-service-token"):
        assert stat.S_IMODE((secrets / name).stat().st_mode) == 0o600, name
    assert password not in (secrets / "users.json").read_text()  # only its scrypt hash
    assert "tkhub is ready: open http://127.0.0.1:" in printed


def test_wrong_password_is_refused(hub: LocalHub):
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        client.get("/hub/login")
        response = client.post(
            "/hub/login",
            data={"username": "admin", "password": "wrong", "_xsrf": xsrf(client, "/hub/")},
        )
    assert response.status_code == 403
    assert "Invalid username or password" in response.text


def test_spawn_page_lists_this_machines_python(hub: LocalHub, admin: httpx.Client):
    page = admin.get("/hub/spawn")
    assert page.status_code == 200
    assert "Python (this machine)" in page.text
    assert 'name="image"' in page.text and 'value="python"' in page.text


def test_form_start_lands_in_jupyterlab_in_notebooks(hub: LocalHub, admin: httpx.Client):
    admin.get("/hub/spawn")
    response = admin.post(
        "/hub/spawn",
        data={"image": "python", "gpu": "none", "_xsrf": xsrf(admin, "/hub/")},
        follow_redirects=False,
    )
    assert response.status_code == 302, response.text[-2000:]
    server = hub.wait_ready("admin")
    assert server["user_options"]["image"] == ["python"]

    lab = admin.get("/user/admin/")  # the OAuth round trip through the hub
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    assert lab.url.path == "/user/admin/lab/tree/notebooks"  # opens in notebooks
    root = admin.get("/user/admin/api/contents").json()  # the file browser's root
    assert {"notebooks", "datasets", "models"} <= {item["name"] for item in root["content"]}
    put = admin.put(
        "/user/admin/api/contents/notebooks/first.ipynb",
        json=NOTEBOOK,
        headers={"X-XSRFToken": xsrf(admin, "/user/admin/")},
    )
    assert put.status_code == 201, put.text
    saved = hub.data_dir / "users" / "admin" / "thinkube" / "notebooks" / "first.ipynb"
    assert saved.exists()
    if os.geteuid() == 0:  # the server ran as the user's own account
        assert saved.owner() == account_of("admin")


def test_notebooks_persist_into_another_environment(hub: LocalHub, admin: httpx.Client):
    other = {"name": "python-two", "display_name": "Python two", "kind": "local",
             "python": sys.executable}  # fmt: skip
    assert hub.catalog("POST", "/images", json=other).status_code == 201
    hub.stop("admin")
    scratch = hub.data_dir / "users" / "admin" / "scratch"
    assert scratch.is_dir() and not any(scratch.iterdir())
    assert hub.spawn("admin", {"image": "python-two"}).status_code in (201, 202)
    server = hub.wait_ready("admin")
    assert server["state"]["environment"] == "python-two"
    assert admin.get("/user/admin/lab").status_code == 200  # signs in to the new server
    listing = admin.get("/user/admin/api/contents/notebooks").json()
    assert "first.ipynb" in {item["name"] for item in listing["content"]}
    hub.stop("admin")


def test_unknown_hidden_and_container_environments_are_refused(hub: LocalHub):
    hub.add_user("bob")
    assert "there is no environment named 'nope'" in refused(hub, "bob", {"image": "nope"})
    hidden = {"name": "old", "kind": "local", "python": sys.executable, "hidden": True}
    assert hub.catalog("POST", "/images", json=hidden).status_code == 201
    assert "there is no environment named 'old'" in refused(hub, "bob", {"image": "old"})
    image = {"name": "cuda-image", "kind": "oci", "image": "registry.example.org/x:1"}
    assert hub.catalog("POST", "/images", json=image).status_code == 201
    assert "container image" in refused(hub, "bob", {"image": "cuda-image"})


def test_bad_rest_bodies_are_a_400_naming_the_problem(hub: LocalHub):
    hub.add_user("bob")
    nope = hub.spawn("bob", {"image": "nope"})
    assert nope.status_code == 400, nope.text
    assert "there is no environment named 'nope'" in nope.json()["message"]
    typo = hub.spawn("bob", {"image": "python", "imgae": "x"})
    assert typo.status_code == 400 and "unknown option 'imgae'" in typo.json()["message"]
    assert hub.server("bob") is None


def test_a_refused_selection_does_not_become_the_users_default(hub: LocalHub):
    """JupyterHub saves a start's options for the next start without any (an empty
    REST body, the admin panel's start button): a refused one must not stay."""
    hub.add_user("carol")
    assert hub.spawn("carol", {"image": "no-such-env-xyz"}).status_code == 400
    started = hub.spawn("carol", {})
    assert started.status_code in (201, 202), (started.text, hub.printed()[-3000:])
    assert hub.wait_ready("carol")
    hub.stop("carol")


def test_a_second_tkhub_up_on_the_same_data_directory_is_refused(hub: LocalHub):
    proxy_pid = (hub.data_dir / "state" / "proxy.pid").read_text()
    second = subprocess.run(
        [TKHUB, "up", "--data-dir", str(hub.data_dir), "--port", "1", "--catalog-port", "2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 1, second.stdout + second.stderr
    said = second.stdout + second.stderr
    assert re.search(r"tkhub is already running on this data directory \(pid \d+,\s+http", said)
    assert "Traceback" not in said
    assert (hub.data_dir / "state" / "proxy.pid").read_text() == proxy_pid
    assert hub.api("GET", "/").status_code == 200  # the first hub is untouched


@pytest.mark.skipif(has_gpu(), reason="checks the message of a machine without GPUs")
def test_gpu_choice_without_gpu_says_why(hub: LocalHub):
    hub.add_user("bob")
    assert "no GPU on this machine" in refused(hub, "bob", {"image": "python", "gpu": "auto"})


@pytest.mark.skipif(has_gpu(), reason="checks the page of a machine without GPUs")
def test_without_gpus_gpu_choices_are_disabled_and_gpu_required_is_refused(
    hub: LocalHub, admin: httpx.Client
):
    from bs4 import BeautifulSoup

    needs_gpu = {"name": "cuda-only", "display_name": "CUDA only", "kind": "local",
                 "python": sys.executable, "gpu": "required"}  # fmt: skip
    assert hub.catalog("POST", "/images", json=needs_gpu).status_code == 201
    page = BeautifulSoup(admin.get("/hub/spawn").text, "html.parser")
    assert page.find("input", {"name": "image", "value": "cuda-only"}) is not None
    auto = page.find("input", {"name": "gpu", "value": "auto"})
    assert auto is not None and auto.has_attr("disabled")
    why = page.find(id=auto["aria-describedby"]).get_text(strip=True)
    assert "no GPU on this machine" in why
    cpu = page.find("input", {"name": "gpu", "value": "none"})
    assert cpu is not None and not cpu.has_attr("disabled")

    hub.add_user("bob")
    message = refused(hub, "bob", {"image": "cuda-only"})
    assert "no GPU on this machine" in message
    message = refused(hub, "bob", {"image": "cuda-only", "gpu": "none"})
    assert "CUDA only needs a GPU" in message


def test_slow_catalog_fails_fast_and_the_hub_recovers(hub: LocalHub, admin: httpx.Client):
    hub.add_user("carol")
    pid = hub.catalog_pid()
    os.kill(pid, signal.SIGSTOP)  # the catalog hangs: accepts connections, never answers
    try:
        started = time.monotonic()
        page = admin.get("/hub/spawn")
        assert time.monotonic() - started < 15
        assert "did not answer within 5 s" in page.text
        started = time.monotonic()
        message = refused(hub, "carol", {"image": "python"})
        assert time.monotonic() - started < 15
        assert "did not answer within 5 s" in message
        assert hub.api("GET", "/").status_code == 200  # the hub itself stays up
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "Python (this machine)" in admin.get("/hub/spawn").text
    assert hub.spawn("carol", {"image": "python"}).status_code in (201, 202)
    hub.wait_ready("carol")
    hub.stop("carol")


def test_killed_catalog_fails_the_spawn_and_comes_back(hub: LocalHub):
    hub.add_user("gina")
    os.kill(hub.catalog_pid(), signal.SIGKILL)
    message = refused(hub, "gina", {"image": "python"})
    assert "cannot be reached" in message
    assert hub.api("GET", "/").status_code == 200
    # JupyterHub restarts its managed service; spawning works again without us
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = hub.spawn("gina", {"image": "python"})
        if response.status_code in (201, 202):
            break
        time.sleep(2)
    else:
        raise AssertionError(f"the catalog did not come back:\n{hub.printed()[-3000:]}")
    hub.wait_ready("gina")
    hub.stop("gina")


@pytest.mark.skipif(os.geteuid() != 0, reason="per-user accounts need the hub to run as root")
def test_users_cannot_read_each_others_files(hub: LocalHub):
    store = UserStore(hub.data_dir / "secrets" / "users.json")
    for name in ("dora", "erin"):
        store.add(name, f"{name}-password-1")
        hub.add_user(name)
        assert hub.spawn(name, {"image": "python"}).status_code in (201, 202)
        hub.wait_ready(name)
    users = hub.data_dir / "users"
    secret = users / "erin" / "thinkube" / "notebooks" / "secret.txt"
    secret.write_text("erin's")

    def as_user(name: str, *cmd: str) -> subprocess.CompletedProcess[str]:
        account = account_of(name)
        return subprocess.run(["runuser", "-u", account, "--", *cmd], capture_output=True,
                              text=True, check=False)  # fmt: skip

    assert as_user("dora", "cat", str(secret)).returncode != 0
    assert as_user("dora", "ls", str(users)).returncode != 0  # no listing of other users
    assert as_user("dora", "ls", str(users / "dora" / "thinkube" / "notebooks")).returncode == 0
    shared = users / "dora" / "thinkube" / "datasets" / "shared.csv"
    assert as_user("dora", "sh", "-c", f"echo a,b > {shared}").returncode == 0
    assert as_user("erin", "cat", str(hub.data_dir / "shared" / "datasets" / "shared.csv")).stdout

    # through the hub: what Dora saves in datasets, Erin's file browser opens;
    # Dora's sign-in does not open Erin's server
    dora, erin = hub.sign_in("dora", "dora-password-1"), hub.sign_in("erin", "erin-password-1")
    try:
        dora.get("/user/dora/lab")
        saved = dora.put(
            "/user/dora/api/contents/datasets/from-dora.csv",
            json={"type": "file", "format": "text", "content": "x,y\n1,2\n"},
            headers={"X-XSRFToken": xsrf(dora, "/user/dora/")},
        )
        assert saved.status_code == 201, saved.text
        erin.get("/user/erin/lab")
        read = erin.get("/user/erin/api/contents/datasets/from-dora.csv")
        assert read.status_code == 200 and read.json()["content"] == "x,y\n1,2\n", read.text
        response = dora.get("/user/erin/api/contents")
        assert response.status_code in (403, 404) or "erin" not in str(response.url)
    finally:
        dora.close()
        erin.close()
    for name in ("dora", "erin"):
        hub.stop(name)


def test_a_unicode_username_gets_an_escaped_home_inside_users(hub: LocalHub):
    name = "zoë.o'neil"
    hub.add_user(name)
    assert hub.spawn(name, {"image": "python"}).status_code in (201, 202)
    hub.wait_ready(name)
    homes = [p.name for p in (hub.data_dir / "users").iterdir()]
    assert escape_username(name) in homes
    assert all(re.fullmatch(r"[a-z0-9-]+", home) for home in homes)
    hub.stop(name)


def test_status_shows_hub_catalog_culler_jobs_and_servers(hub: LocalHub):
    hub.add_user("hank")
    assert hub.spawn("hank", {"image": "python"}).status_code in (201, 202)
    hub.wait_ready("hank")
    # no port flags: `tkhub status` finds the running `tkhub up` of the data directory
    done = subprocess.run(
        [TKHUB, "status", "--data-dir", str(hub.data_dir)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Hub:      ok" in done.stdout and "Catalog:  ok" in done.stdout
    assert "Culler:   ok  running: stops servers idle for more than 3600 s" in done.stdout
    assert re.search(r"Jobs: +ok  answering at \S+/services/jobs: 0 running, 0 queued", done.stdout)
    row = next(line for line in done.stdout.splitlines() if "hank" in line)
    assert "ready" in row and "python" in row
    hub.stop("hank")


def test_ctrl_c_stops_the_hub_and_its_servers(hub: LocalHub):
    hub.add_user("frank")
    assert hub.spawn("frank", {"image": "python"}).status_code in (201, 202)
    pid = hub.wait_ready("frank")["state"]["pid"]
    hub.proc.send_signal(signal.SIGINT)
    assert hub.proc.wait(timeout=60) == 0, hub.printed()[-3000:]
    assert "tkhub stopped." in hub.printed()
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the server's process is gone, too
            os.kill(pid, 0)
            time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):
        httpx.get(hub.url, timeout=5)


def test_stopping_with_no_server_needs_no_escalation():
    """Started where SIGINT is ignored (nohup, a background shell), tkhub still stops
    at once: every service ends on JupyterHub's first signal. One that did not would
    add JupyterHub's 10 s wait before SIGTERM; the stop itself is measured in
    bench/spawn.py."""
    with running_tkhub_up(sigint_ignored=True) as hub:
        processes = psutil.Process(hub.proc.pid).children(recursive=True)
        assert len(processes) >= 4, processes  # hub, proxy, catalog, culler
        started = time.monotonic()
        hub.proc.send_signal(signal.SIGINT)
        assert hub.proc.wait(timeout=60) == 0, hub.printed()[-3000:]
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"stopping took {elapsed:.1f} s:\n{hub.printed()[-3000:]}"
        assert not [p for p in processes if p.is_running()]


def test_after_a_restart_the_notebook_is_still_there(hub: LocalHub):
    """The same data directory, a new `tkhub up`: same admin, same files, no new password."""
    password = first_admin_password(hub.printed())
    if hub.proc.poll() is None:  # on its own: save a notebook, then stop the first run
        if hub.server("admin") is None:
            assert hub.spawn("admin", {"image": "python"}).status_code in (201, 202)
        hub.wait_ready("admin")
        client = hub.sign_in("admin", password)
        try:
            client.get("/user/admin/lab")
            put = client.put(
                "/user/admin/api/contents/notebooks/kept.ipynb",
                json=NOTEBOOK,
                headers={"X-XSRFToken": xsrf(client, "/user/admin/")},
            )
            assert put.status_code == 201, put.text
        finally:
            client.close()
        hub.proc.send_signal(signal.SIGINT)
        assert hub.proc.wait(timeout=60) == 0, hub.printed()[-3000:]
    notebooks = hub.data_dir / "users" / "admin" / "thinkube" / "notebooks"
    saved = {p.name for p in notebooks.glob("*.ipynb")}
    assert saved & {"first.ipynb", "kept.ipynb"}
    with running_tkhub_up(root=hub.data_dir.parent, keep=True) as again:
        assert "First start" not in again.printed()
        client = again.sign_in("admin", password)
        try:
            started = again.spawn("admin", {"image": "python"})
            assert started.status_code in (201, 202), (started.text, again.printed()[-4000:])
            again.wait_ready("admin")
            assert client.get("/user/admin/lab").status_code == 200
            listing = client.get("/user/admin/api/contents/notebooks").json()
            assert saved <= {item["name"] for item in listing["content"]}
        finally:
            client.close()
