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
from collections.abc import Iterator
from pathlib import Path

import httpx
import jupyterhub
import pytest
from image_builds import (
    buildah_env,
    docker_registry,
    local_image_id,
    make_base,
    manifests,
    missing_tools,
    registry_digest,
    storage,
)

from tkhub.environments.containerfile import render
from tkhub.environments.definition import load_definition, load_definitions
from tkhub.environments.oci_build import image_tag

pytestmark = pytest.mark.registry
HERE = Path(__file__).resolve().parent
TKHUB = str(Path(os.sys.executable).parent / "tkhub")


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-images-"))
    yield root
    subprocess.run(["buildah", *storage(root), "rm", "--all"], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def base(work: Path) -> str:
    if missing := missing_tools():
        pytest.fail(
            f"{', '.join(missing)} not installed: the CI installs them (scripts/setup.sh test)"
        )
    return make_base(work)


@pytest.fixture(scope="module")
def registry(work: Path) -> Iterator[str]:
    with docker_registry(work) as host:
        yield host


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


def tiny_build(work: Path, base: str, registry: str, *extra: str,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [TKHUB, "images", "build", *extra, "--definitions", str(work / "definitions"),
         "--base", base, "--ca-bundle", "/etc/ssl/certs/ca-certificates.crt",
         "--push", f"{registry}/tk", "--no-tls-verify", "--data-dir", str(work / "data")],
        capture_output=True, text=True, timeout=1800,
        env={**(env or buildah_env(work)), "COLUMNS": "250"},
    )  # fmt: skip


def catalog_entry(work: Path) -> dict:
    listed = subprocess.run([TKHUB, "catalog", "list", "--json", "--data-dir", str(work / "data")],
                            capture_output=True, text=True, check=True)  # fmt: skip
    (entry,) = json.loads(listed.stdout)
    return dict(entry)


@pytest.fixture(scope="module")
def pushed(work, base, registry) -> subprocess.CompletedProcess[str]:
    """The first build of the three definitions, pushed and synced into the catalog."""
    data = work / "data"
    data.mkdir()
    (data / "tkhub.yaml").write_text(
        f"registries:\n  - name: test\n    url: http://{registry}\n    tags: 'glob:latest'\n"
    )
    definitions(work)
    return tiny_build(work, base, registry)


def test_build_check_push_sync(work, registry, pushed):
    out = pushed.stdout + pushed.stderr
    assert pushed.returncode == 1, out  # one failed, one skipped
    assert "Traceback" not in out
    assert "jupyterhub-singleuser is not installed" in out  # nohub refused before push
    assert "its parent nohub was failed" in out  # its child skipped
    assert "Catalog synced from test: 1 added" in pushed.stdout, pushed.stdout[-3000:]
    entry = catalog_entry(work)
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


def test_a_rebuild_of_an_unchanged_definition_keeps_its_digest_and_pushes_nothing(
    work, base, registry, pushed
):
    tiny = load_definition(work / "definitions" / "tiny")
    tag = image_tag(tiny, load_definitions(work / "definitions"))
    version = tag.rsplit(":", 1)[1]

    def state() -> tuple[set[str], str, str]:  # manifests stored, the tag's digest, local ID
        return (manifests(work, "tk/tiny"), registry_digest(registry, f"tk/tiny:{version}"),
                local_image_id(work, tag))  # fmt: skip

    before = state()
    entry = catalog_entry(work)
    assert entry["digest"] == before[1]

    again = tiny_build(work, base, registry, "tiny")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "in the registry already: nothing pushed" in again.stdout
    assert state() == before
    synced = subprocess.run([TKHUB, "catalog", "sync", "--data-dir", str(work / "data")],
                            capture_output=True, text=True)  # fmt: skip
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert catalog_entry(work)["digest"] == before[1]

    # built here already, nothing to push: the local image is not checked or committed again
    local = subprocess.run(
        [TKHUB, "images", "build", "tiny", "--definitions", str(work / "definitions"),
         "--base", base, "--ca-bundle", "/etc/ssl/certs/ca-certificates.crt"],
        capture_output=True, text=True, timeout=900, env={**buildah_env(work), "COLUMNS": "250"},
    )  # fmt: skip
    assert local.returncode == 0, local.stdout + local.stderr
    assert "built here already" in local.stdout
    assert local_image_id(work, tag) == before[2]


def test_a_second_machine_finds_the_image_in_the_registry_and_builds_nothing(
    work, base, registry, pushed
):
    other = work / "other"  # another machine: its own storage, the same base image
    other.mkdir()
    archive = work / "base.oci.tar"
    subprocess.run(["buildah", *storage(work), "push", "-q", base, f"oci-archive:{archive}"],
                   check=True)  # fmt: skip
    pulled = subprocess.run(["buildah", *storage(other), "pull", "-q", f"oci-archive:{archive}"],
                            check=True, capture_output=True, text=True)  # fmt: skip
    subprocess.run(["buildah", *storage(other), "tag", pulled.stdout.split()[-1], base], check=True)
    assert local_image_id(other, base) == local_image_id(work, base)  # the same base
    before = manifests(work, "tk/tiny")
    shutil.copytree(work / "definitions", other / "definitions")
    (other / "data").mkdir()
    elsewhere = tiny_build(other, base, registry, "tiny", env=buildah_env(other))
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr
    assert "in the registry already: nothing pushed" in elsewhere.stdout
    assert manifests(work, "tk/tiny") == before
    tiny = load_definition(other / "definitions" / "tiny")
    assert (
        subprocess.run(
            ["buildah", *storage(other), "images", "--quiet", image_tag(tiny, {"tiny": tiny})],
            capture_output=True,
        ).returncode
        != 0
    )  # nothing was built there
    subprocess.run(["buildah", *storage(other), "rmi", "--all", "--force"], capture_output=True)


def test_one_package_changed_in_the_lock_gives_a_new_image(work, base, registry, pushed):
    before, old = manifests(work, "tk/tiny"), registry_digest(registry, "tk/tiny:latest")
    lock = work / "definitions" / "tiny" / "requirements.lock"
    assert "tabulate==0.10.0" in lock.read_text()
    lock.write_text(lock.read_text().replace("tabulate==0.10.0", "tabulate==0.9.0"))
    changed = tiny_build(work, base, registry, "tiny")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert registry_digest(registry, "tk/tiny:latest") != old
    assert len(manifests(work, "tk/tiny") - before) == 1
