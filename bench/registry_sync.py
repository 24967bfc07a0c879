"""Registry sync benchmark: 100 repositories x 10 tags in a local docker-registry.

    .venv/bin/python bench/registry_sync.py [--repos 100] [--tags 10] [--skopeo-repos N]
        [--repeat 3] [--concurrency 8]

Builds the images once with buildah and keeps the registry's storage in
/tmp/tkhub-bench-registry between runs. Measures, in the same run, a first full
sync (into an empty catalog, no config labels cached), a no-change re-sync,
``--repeat`` times each (each time a fresh catalog; the median is compared),
and the baseline: a sequential ``skopeo list-tags`` + ``skopeo inspect`` loop
over the same registry (over the first ``--skopeo-repos`` repositories, all by
default; the per-image rate is printed so a partial loop can be compared
honestly). Every tag is synced (tag policy ``glob:*``), so both sides look at
the same 1000 images.

The 100 repositories hold the same 10 images, so the first sync fetches only 10
distinct config blobs; "first sync, no config reuse" fetches one per image, what
a registry of 1000 different images costs. The registry's own CPU time is
printed for each sync: on a small machine it, not the client, sets the floor.
The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tkhub.catalog import db
from tkhub.catalog.registry import client as registry_client
from tkhub.catalog.registry.client import DEFAULT_CONCURRENCY, RegistryClient
from tkhub.catalog.registry.sync import sync_one
from tkhub.settings import RegistrySettings

CACHE = Path("/tmp/tkhub-bench-registry")  # --cache


def buildah() -> list[str]:
    return [
        "buildah", "--storage-driver", "vfs",
        "--root", str(CACHE / "root"), "--runroot", str(CACHE / "run"),
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(port: int) -> subprocess.Popen[bytes]:
    config = CACHE / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n"
        f"    rootdirectory: {CACHE}/storage\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stderr=subprocess.DEVNULL)
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    sys.exit("docker-registry did not start")


def tags_for(count: int) -> list[str]:
    return ["latest", *(f"1.{i}" for i in range(count - 1))]


def build_images(tags: list[str]) -> dict[str, str]:
    images = {}
    for tag in tags:
        name = f"localhost/bench-{tag}"
        payload = CACHE / f"payload-{tag}.txt"
        payload.write_text(f"bench image {tag}\n")
        container = subprocess.check_output([*buildah(), "from", "scratch"], text=True).strip()
        subprocess.run(
            [*buildah(), "copy", container, str(payload), "/payload.txt"],
            check=True,
            capture_output=True,
        )
        labels = ["--label", "io.thinkube.jupyter.compatible=true",
                  "--label", f"io.thinkube.jupyter.display-name=Bench {tag}"]  # fmt: skip
        subprocess.run([*buildah(), "config", *labels, container], check=True)
        subprocess.run(
            [*buildah(), "commit", "-q", "--rm", container, name], check=True, capture_output=True
        )
        images[tag] = name
    return images


def populate(port: int, repos: int, tags: list[str]) -> None:
    marker = CACHE / f"populated-{repos}x{len(tags)}"
    if marker.exists():
        return
    print(f"building and pushing {repos} x {len(tags)} images (once; cached in {CACHE}) ...")
    images = build_images(tags)

    def push(job: tuple[int, str]) -> None:
        repo, tag = job
        dest = f"docker://127.0.0.1:{port}/bench/r{repo:03d}:{tag}"
        subprocess.run(
            [*buildah(), "push", "-q", "--tls-verify=false", images[tag], dest],
            check=True,
            capture_output=True,
        )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(push, [(r, t) for r in range(repos) for t in tags]))
    marker.touch()


def skopeo_loop(port: int, repos: int) -> tuple[float, int]:
    started, images = time.perf_counter(), 0
    for repo in range(repos):
        ref = f"docker://127.0.0.1:{port}/bench/r{repo:03d}"
        listed = subprocess.run(
            ["skopeo", "list-tags", "--tls-verify=false", ref], check=True, capture_output=True
        )
        for tag in json.loads(listed.stdout)["Tags"]:
            subprocess.run(
                ["skopeo", "inspect", "--tls-verify=false", f"{ref}:{tag}"],
                check=True,
                capture_output=True,
            )
            images += 1
    return time.perf_counter() - started, images


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (the registry), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def timed_sync(
    settings: RegistrySettings, sessions: object, concurrency: int, registry_pid: int
) -> tuple[float, float, object]:
    """Wall seconds, registry CPU seconds, report."""
    cpu, started = cpu_seconds(registry_pid), time.perf_counter()
    report = asyncio.run(sync_one(settings, sessions, concurrency=concurrency))  # type: ignore[arg-type]
    return time.perf_counter() - started, cpu_seconds(registry_pid) - cpu, report


def fresh_catalog(workdir: Path, name: str) -> object:
    engine = db.make_engine(f"sqlite:///{workdir}/{name}.sqlite")
    db.upgrade(engine)
    return db.session_factory(engine)


def main() -> None:
    global CACHE
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--skopeo-repos", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=CACHE, help="images and registry storage")
    args = parser.parse_args()
    CACHE = args.cache
    for binary in ("docker-registry", "buildah", "skopeo"):
        if not shutil.which(binary):
            sys.exit(f"{binary} is not installed")
    CACHE.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = start_registry(port)
    workdir = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-bench-db-"))
    try:
        populate(port, args.repos, tags_for(args.tags))
        settings = RegistrySettings(
            name="bench", url=f"http://127.0.0.1:{port}", prefix="bench/", tags="glob:*"
        )
        total = args.repos * args.tags
        print(f"{args.repos} x {args.tags} images, {args.concurrency} in flight; {load()}")
        firsts, agains = [], []
        for run in range(args.repeat):
            registry_client.LABELS.clear()
            sessions = fresh_catalog(workdir, f"run{run}")
            first, first_cpu, report = timed_sync(settings, sessions, args.concurrency, proc.pid)
            again, again_cpu, report2 = timed_sync(settings, sessions, args.concurrency, proc.pid)
            firsts.append(first)
            agains.append(again)
            print(
                f"first sync:     {first:7.2f} s  ({len(report.added)} added; "  # type: ignore[attr-defined]
                f"registry CPU {first_cpu:.2f} s)"
            )
            print(
                f"no-change sync: {again:7.2f} s  ({len(report2.unchanged)} unchanged; "  # type: ignore[attr-defined]
                f"registry CPU {again_cpu:.2f} s)"
            )
        registry_client.LABELS.clear()
        shared = RegistryClient.config_labels
        RegistryClient.config_labels = RegistryClient._fetch_labels  # type: ignore[method-assign]
        try:
            distinct, distinct_cpu, report3 = timed_sync(
                settings, fresh_catalog(workdir, "distinct"), args.concurrency, proc.pid
            )
        finally:
            RegistryClient.config_labels = shared  # type: ignore[method-assign]
        print(
            f"first sync, no config reuse: {distinct:7.2f} s  ({len(report3.added)} added; "  # type: ignore[attr-defined]
            f"registry CPU {distinct_cpu:.2f} s)"
        )
        first, again = statistics.median(firsts), statistics.median(agains)
        print(f"median of {args.repeat}: first sync {first:.2f} s, no-change sync {again:.2f} s")
        print(f"after the syncs: {load()}")
        loop_repos = args.skopeo_repos or args.repos
        loop, images = skopeo_loop(port, loop_repos)
        per_image = loop / images
        print(f"skopeo loop:    {loop:7.2f} s  for {images} images; {load()}")
        print(f"skopeo loop:    {per_image * 1000:7.2f} ms per image")
        print(f"first sync:     {first / total * 1000:7.2f} ms per image (median)")
        print(f"ratio, skopeo loop / first sync (per image): {per_image / (first / total):6.1f}x")
        print(
            "ratio, skopeo loop / first sync, no config reuse (per image): "
            f"{per_image / (distinct / total):6.1f}x"
        )
        print(
            f"ratio, skopeo loop / no-change sync (per image): {per_image / (again / total):6.1f}x"
        )
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
