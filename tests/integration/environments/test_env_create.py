"""``tkhub env create`` of a small definition next to a real ``tkhub up``: built with
uv from its lock, checked, registered from its metadata, spawned through the hub, and
its package imported in a notebook kernel. Broken definitions register nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jupyterhub
import pytest
from kernels import run_in_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from local_hub import TKHUB, LocalHub, running_tkhub_up, xsrf  # noqa: E402

DEFINITIONS = Path(__file__).resolve().parent / "definitions"


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[LocalHub]:
    root = tmp_path_factory.mktemp("env-create")
    os.environ["TKHUB_ENVS_DIR"] = str(root / "envs")  # never /opt/tkhub: not the tests'
    root.chmod(0o755)
    for parent in root.parents:  # server accounts reach the environment below /tmp
        if parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o711)
    try:
        with running_tkhub_up() as hub:
            yield hub
    finally:
        os.environ.pop("TKHUB_ENVS_DIR", None)


def tkhub(hub: LocalHub, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TKHUB, *args, "--data-dir", str(hub.data_dir)],
        capture_output=True, text=True, timeout=900, env=dict(os.environ),
    )  # fmt: skip


def names(hub: LocalHub) -> set[str]:
    listing = hub.catalog("GET", "/images/jupyter", params={"include_hidden": "true"})
    return {entry["name"] for entry in listing.json()}


def test_create_register_spawn_and_import(hub: LocalHub):
    created = tkhub(hub, "env", "create", str(DEFINITIONS / "tiny"))
    assert created.returncode == 0, created.stdout + created.stderr
    assert "tiny created in" in created.stdout and "check passed" in created.stdout
    entry = hub.catalog("GET", "/images/tiny").json()
    assert entry["kind"] == "local" and entry["display_name"] == "Tiny"
    assert entry["packages"] == ["jupyterhub", "jupyterlab", "ipykernel", "tabulate"]
    assert entry["facts"]["hub_major"] == int(jupyterhub.__version__.split(".")[0])
    assert entry["facts"]["python"].startswith("3.")
    python = Path(entry["python"])
    assert python.is_relative_to(os.environ["TKHUB_ENVS_DIR"])

    password = Path(os.environ["TKHUB_ENVS_DIR"]).parent / "envuser-password"
    password.write_text("a-test-password\n")
    assert tkhub(hub, "users", "add", "envuser", "--password-file", str(password)).returncode == 0
    hub.add_user("envuser")
    browser = hub.sign_in("envuser", "a-test-password")
    try:
        page = " ".join(browser.get("/hub/spawn").text.split())
        assert 'value="tiny"' in page and "Checked: Python 3." in page, page[-3000:]
        assert f"JupyterHub {jupyterhub.__version__.split('.')[0]}" in page
        spawned = hub.spawn("envuser", {"image": "tiny", "gpu": "none"})
        assert spawned.status_code in (201, 202), spawned.text
        hub.wait_ready("envuser")
        made = browser.post("/hub/api/users/envuser/tokens", json={"expires_in": 600},
                            headers={"X-XSRFToken": xsrf(browser, "/hub/")})  # fmt: skip
        token = made.json()["token"]
    finally:
        browser.close()
    code = "import json, sys, tabulate; print(json.dumps([sys.executable, tabulate.__name__]))"
    executable, module = run_in_kernel(hub, "envuser", code, token=token)
    assert module == "tabulate" and executable.startswith(str(python.parent.parent))

    # again: unchanged, re-registered; the running server keeps its tree
    again = tkhub(hub, "env", "create", str(DEFINITIONS / "tiny"))
    assert again.returncode == 0 and "tiny unchanged" in again.stdout, again.stderr
    hub.stop("envuser")


def test_a_definition_without_jupyterhub_is_refused_and_registers_nothing(hub, tmp_path):
    broken = tmp_path / "nohub"
    shutil.copytree(DEFINITIONS / "tiny", broken)
    (broken / "requirements.lock").write_text("tabulate==0.9.0\n")
    done = tkhub(hub, "env", "create", str(broken))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "nohub was not created: jupyterhub-singleuser is not installed" in done.stderr
    assert "nohub" not in names(hub)
    assert not any((Path(os.environ["TKHUB_ENVS_DIR"]) / "nohub").iterdir())


def test_an_unknown_definition_is_a_usage_error(hub):
    done = tkhub(hub, "env", "create", "no-such-environment")
    assert done.returncode == 2
    assert "no environment definition named 'no-such-environment'" in done.stderr
    assert "scipy" in done.stderr  # the curated ones are named
