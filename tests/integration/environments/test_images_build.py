"""``tkhub images build`` for real: a base image made here with mmdebstrap (no base
image registry is reachable), the small definition built with buildah, checked in
the image, labelled with its facts, pushed to a real docker-registry and synced into
the catalog; a definition without jupyterhub is refused before push, its child is
skipped, its sibling is built."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jupyterhub
import pytest
from hubproc import free_port, terminate

from tkhub.environments.containerfile import render
from tkhub.environments.definition import load_definition

pytestmark = pytest.mark.registry
HERE = Path(__file__).resolve().parent
TKHUB = str(Path(os.sys.executable).parent / "tkhub")
BASE = "localhost/tkhub-test-base:bookworm"


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-images-"))
    yield root
    subprocess.run(["buildah", *storage(root), "rm", "--all"], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def storage(root: Path) -> list[str]:
    return ["--storage-driver", "vfs", "--root", str(root / "storage"),
            "--runroot", str(root / "run")]  # fmt: skip


def buildah_env(root: Path) -> dict[str, str]:
    """buildah of the CLI under test, pointed at this test's own storage."""
    conf = root / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root}/storage"\nrunroot = "{root}/run"\n'
    )
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf), "BUILDAH_ISOLATION": "chroot"}


@pytest.fixture(scope="module")
def base(work: Path) -> str:
    for tool in ("mmdebstrap", "buildah", "docker-registry"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed: the CI installs it (scripts/setup.sh test)")
    tar = work / "base.tar"
    subprocess.run(
        ["mmdebstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
         "--quiet", "bookworm", str(tar)],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    run = ["buildah", *storage(work)]
    container = subprocess.check_output([*run, "from", "scratch"], text=True).strip()
    subprocess.run([*run, "add", container, str(tar), "/"], check=True, capture_output=True)
    subprocess.run([*run, "commit", "-q", "--rm", container, BASE], check=True)
    tar.unlink()
    return BASE


@pytest.fixture(scope="module")
def registry(work: Path) -> Iterator[str]:
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work}/registry\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    terminate(proc)


def definitions(work: Path) -> Path:
    """tiny, and nohub (no jupyterhub in its lock) with a child nohub-kid."""
    root = work / "definitions"
    shutil.copytree(HERE / "definitions" / "tiny", root / "tiny")
    shutil.copytree(HERE / "definitions" / "tiny", root / "nohub")
    (root / "nohub" / "requirements.lock").write_text("tabulate==0.9.0\n")
    shutil.copytree(HERE / "definitions" / "tiny", root / "nohub-kid")
    meta = root / "nohub-kid" / "environment.toml"
    meta.write_text(meta.read_text() + 'parent = "nohub"\n')
    for name in ("tiny", "nohub", "nohub-kid"):
        (root / name / "Containerfile").write_text(render(load_definition(root / name)))
    return root


def test_build_check_push_sync(work, base, registry):
    data = work / "data"
    data.mkdir()
    (data / "tkhub.yaml").write_text(
        f"registries:\n  - name: test\n    url: http://{registry}\n    tags: 'glob:latest'\n"
    )
    done = subprocess.run(
        [TKHUB, "images", "build", "--definitions", str(definitions(work)), "--base", base,
         "--push", f"{registry}/tk", "--no-tls-verify",
         "--ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "--data-dir", str(data)],
        capture_output=True, text=True, timeout=1800, env={**buildah_env(work), "COLUMNS": "250"},
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # one failed, one skipped
    assert "Traceback" not in out
    assert "jupyterhub-singleuser is not installed" in out  # nohub refused before push
    assert "its parent nohub was failed" in out  # its child skipped
    assert "Catalog synced from test: 1 added" in done.stdout, done.stdout[-3000:]
    listed = subprocess.run([TKHUB, "catalog", "list", "--json", "--data-dir", str(data)],
                            capture_output=True, text=True, check=True)  # fmt: skip
    (entry,) = json.loads(listed.stdout)
    assert entry["display_name"] == "Tiny" and entry["image"].startswith(f"{registry}/tk/tiny")
    assert entry["facts"]["hub_major"] == int(jupyterhub.__version__.split(".")[0])

    tags = httpx.get(f"http://{registry}/v2/_catalog").json()["repositories"]
    assert tags == ["tk/tiny"]  # nothing of the refused images reached the registry
    inspect = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry}/tk/tiny:latest"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    labels = json.loads(inspect.stdout)["Labels"]
    assert labels["io.thinkube.jupyter.compatible"] == "true"
    assert labels["io.thinkube.jupyter.display-name"] == "Tiny"
    assert labels["io.thinkube.jupyter.hub-major"] == jupyterhub.__version__.split(".")[0]

    again = subprocess.run(
        [TKHUB, "images", "build", "tiny", "--definitions", str(work / "definitions"),
         "--base", base, "--ca-bundle", "/etc/ssl/certs/ca-certificates.crt"],
        capture_output=True, text=True, timeout=900, env={**buildah_env(work), "COLUMNS": "250"},
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "unchanged" in again.stdout
