"""Examples: what delivery adds to a spawn, and what a no-change sync costs.

    .venv/bin/python bench/examples.py [--files 200] [--notebooks 500] [--runs 20]

Delivery: a folder of ``--files`` small notebooks (plus ``common``) delivered into a
user's notebooks by ``python -m tkhub.examples.delivery``, the command the local
spawner runs before each start (the Kubernetes init container runs the same). The
first delivery copies; a spawn after it finds nothing changed (what every later spawn
pays). Baseline, same run: ``python -c pass`` (the interpreter start each spawn
pays anyway for the subprocess). Goal: median added spawn time <= 100 ms.

Sync: a git repository of ``--notebooks`` notebooks served by ``git daemon`` on
127.0.0.1. A no-change ``sync`` (one ``git ls-remote``) against a forced full sync
(clone, validate, swap) of the same repository. Goal: no-change sync <= 1 s.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from tkhub.examples.repository import current, sync


def notebook(i: int) -> str:
    cells = [nbformat.v4.new_markdown_cell(f"# Example {i}"),
             nbformat.v4.new_code_cell(f"x = {i}\nprint(x * 2)")]  # fmt: skip
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells))


def make_tree(root: Path, folder: str, count: int) -> None:
    for i in range(count):
        path = root / folder / f"nb{i:03d}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(notebook(i))
    (root / "common").mkdir(parents=True, exist_ok=True)
    (root / "common" / "tour.ipynb").write_text(notebook(-1))


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def bench_delivery(work: Path, files: int, runs: int) -> None:
    repo = work / "served"
    make_tree(repo, "scipy", files)
    notebooks = work / "notebooks"
    deliver = [sys.executable, "-m", "tkhub.examples.delivery", "--repo", str(repo),
               "--folder", "scipy", "--notebooks", str(notebooks)]  # fmt: skip
    first = timed(deliver)
    again, bare = [], []
    for _ in range(runs):
        again.append(timed(deliver))
        bare.append(timed([sys.executable, "-c", "pass"]))
    delivered = len(list((notebooks / "examples" / "scipy").iterdir()))
    added = statistics.median(again)
    print(f"delivery of {delivered} files: first {first * 1000:.0f} ms (copies), "
          f"then median {added * 1000:.0f} ms per spawn (nothing changed)")  # fmt: skip
    print(f"python -c pass (baseline, same run): median {statistics.median(bare) * 1000:.0f} ms")
    print(f"ratio delivery/bare interpreter: {added / statistics.median(bare):.2f}x; "
          f"added spawn time {added * 1000:.0f} ms, goal <= 100 ms")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_sync(work: Path, count: int, runs: int) -> None:
    base = work / "git"
    repo = base / "examples.git"
    make_tree(repo, "scipy", count)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=b", "-c", "user.email=b@example.org", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True)  # fmt: skip
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
         f"--port={port}", f"--base-path={base}", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"git://127.0.0.1:{port}/examples.git"
    root, shipped = work / "examples-repo", work / "none"
    try:
        for _ in range(50):
            if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        full, same = [], []
        for _ in range(runs):
            started = time.perf_counter()
            assert sync(root, shipped=shipped, git_url=url, force=True).ok
            full.append(time.perf_counter() - started)
            started = time.perf_counter()
            status = sync(root, shipped=shipped, git_url=url)
            same.append(time.perf_counter() - started)
            assert status.message.startswith("unchanged"), status
        files = len(list((current(root) / "scipy").iterdir()))
        f, s = statistics.median(full), statistics.median(same)
        print(f"sync of {files} notebooks: full (clone, validate, swap) median {f:.2f} s, "
              f"no change median {s * 1000:.0f} ms")  # fmt: skip
        print(f"ratio full/no-change sync: {f / s:.1f}x; no-change goal <= 1 s")
    finally:
        daemon.terminate()
        daemon.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--notebooks", type=int, default=500)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-bench-examples-"))
    try:
        bench_delivery(work / "delivery", args.files, args.runs)
        bench_sync(work / "sync", args.notebooks, max(3, args.runs // 4))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
