"""Image rebuilds: what `tkhub images build --push` costs and pushes for an unchanged
definition, against the first build of it in the same run.

The tests' small definition (``tiny``: JupyterLab and tabulate) is built from a base
made here with mmdebstrap and pushed to a docker-registry of its own; then built
again on the same storage, and once more on a second, empty storage that holds only
the same base (another machine). Printed for each: wall time, whether the registry's
digest changed, and how many manifests the registry stored; then the first build's
time over each rebuild's.

    .venv/bin/python bench/image_rebuild.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

from image_builds import (  # noqa: E402
    buildah_env,
    docker_registry,
    make_base,
    manifests,
    missing_tools,
    registry_digest,
    storage,
)

TKHUB = str(Path(sys.executable).parent / "tkhub")
TINY = REPO / "tests" / "integration" / "environments" / "definitions" / "tiny"


def build(root: Path, definitions: Path, base: str, registry: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [TKHUB, "images", "build", "tiny", "--definitions", str(definitions), "--base", base,
         "--push", f"{registry}/tk", "--no-tls-verify",
         "--ca-bundle", "/etc/ssl/certs/ca-certificates.crt"],
        check=True, capture_output=True, timeout=1800, env=buildah_env(root),
    )  # fmt: skip
    return time.perf_counter() - started


def copy_base(source: Path, target: Path, base: str) -> None:
    """The same base image (the same image ID) into another storage."""
    archive = source / "base.oci.tar"
    subprocess.run(["buildah", *storage(source), "push", "-q", base, f"oci-archive:{archive}"],
                   check=True)  # fmt: skip
    pulled = subprocess.run(["buildah", *storage(target), "pull", "-q", f"oci-archive:{archive}"],
                            check=True, capture_output=True, text=True)  # fmt: skip
    subprocess.run(["buildah", *storage(target), "tag", pulled.stdout.split()[-1], base],
                   check=True)  # fmt: skip


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    if missing := missing_tools():
        raise SystemExit(f"not installed: {', '.join(missing)} (bash scripts/setup.sh test)")
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-bench-images-"))
    other = work / "other"
    try:
        definitions = work / "definitions"
        shutil.copytree(TINY, definitions / "tiny")
        print("making the base with mmdebstrap ...", flush=True)
        base = make_base(work)
        other.mkdir()
        copy_base(work, other, base)
        with docker_registry(work) as registry:
            rows = []
            for what, root in (("first build", work), ("rebuild, same storage", work),
                               ("rebuild, another machine", other)):  # fmt: skip
                seconds = build(root, definitions, base, registry)
                rows.append((what, seconds, registry_digest(registry, "tk/tiny:latest"),
                             len(manifests(work, "tk/tiny"))))  # fmt: skip
                print(f"{what:26s} {seconds:7.1f} s", flush=True)
        first_digest = rows[0][2]
        print()
        print(f"{'':26s} {'wall s':>7s}  {'digest':8s}  manifests  first build / this")
        for what, seconds, digest, stored in rows:
            same = "same" if digest == first_digest else "CHANGED"
            print(f"{what:26s} {seconds:7.1f}  {same:8s}  {stored:9d}  "
                  f"{rows[0][1] / seconds:.1f}x")  # fmt: skip
    finally:
        for root in (work, other):
            subprocess.run(["buildah", *storage(root), "rmi", "--all", "--force"],
                           capture_output=True, env={**os.environ})  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
