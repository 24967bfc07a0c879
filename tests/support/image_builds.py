"""What image-build tests and benchmarks share: buildah storage of their own, a base
image made with mmdebstrap (no base image registry is reachable), a docker-registry,
and the registry's own count of manifests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from hubproc import free_port, terminate

BASE = "localhost/tkhub-test-base:bookworm"
TOOLS = ("mmdebstrap", "buildah", "skopeo", "docker-registry")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if not shutil.which(tool)]


def storage(root: Path) -> list[str]:
    return ["--storage-driver", "vfs", "--root", str(root / "storage"),
            "--runroot", str(root / "run")]  # fmt: skip


def buildah_env(root: Path) -> dict[str, str]:
    """buildah of the CLI under test, pointed at ``root``'s own storage."""
    conf = root / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root}/storage"\nrunroot = "{root}/run"\n'
    )
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf), "BUILDAH_ISOLATION": "chroot"}


def make_base(root: Path, name: str = BASE) -> str:
    """A Debian bookworm base with Python, made by mmdebstrap into ``root``'s storage."""
    tar = root / "base.tar"
    subprocess.run(
        ["mmdebstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
         "--quiet", "bookworm", str(tar)],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    run = ["buildah", *storage(root)]
    container = subprocess.check_output([*run, "from", "scratch"], text=True).strip()
    subprocess.run([*run, "add", container, str(tar), "/"], check=True, capture_output=True)
    subprocess.run([*run, "commit", "-q", "--rm", container, name], check=True)
    tar.unlink()
    return name


@contextmanager
def docker_registry(root: Path) -> Iterator[str]:
    """A docker-registry on 127.0.0.1 storing under ``root/registry``; its host:port."""
    port = free_port()
    config = root / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/registry\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        terminate(proc)


def manifests(root: Path, repository: str) -> set[str]:
    """Every manifest the registry under ``root`` ever stored for ``repository``."""
    revisions = root / "registry/docker/registry/v2/repositories" / repository
    found = revisions / "_manifests/revisions/sha256"
    return {p.name for p in found.iterdir()} if found.is_dir() else set()


def registry_digest(registry: str, reference: str) -> str:
    """The manifest digest the registry gives for ``repository:tag``."""
    inspect = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry}/{reference}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return str(json.loads(inspect.stdout)["Digest"])


def local_image_id(root: Path, reference: str) -> str:
    return subprocess.check_output(
        ["buildah", *storage(root), "images", "--no-trunc", "--quiet", reference], text=True
    ).strip()
