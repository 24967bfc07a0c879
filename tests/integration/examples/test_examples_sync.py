"""Examples sync from a real git repository (made here, served by ``git daemon``):
first sync, an update, broken updates that keep the last good copy, and readers that
never see half a tree while syncs swap it."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from hubproc import free_port, terminate

from tkhub.examples.repository import current, read_status, sync

SHIPPED = Path(__file__).resolve().parents[3] / "examples" / "notebooks"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def notebook(text: str) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text)])
    return nbformat.writes(nb)


def commit(repo: Path, files: dict[str, str | bytes], message: str) -> None:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", message)


@pytest.fixture
def upstream(tmp_path) -> Iterator[tuple[Path, str]]:
    """A repository with common/ and scipy/, served read-only by git daemon."""
    base = tmp_path / "served"
    repo = base / "examples.git"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"common/tour.ipynb": notebook("print('v1')"),
                  "scipy/analysis.ipynb": notebook("x = 1")}, "first")  # fmt: skip
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
         f"--port={port}", f"--base-path={base}", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"git://127.0.0.1:{port}/examples.git"
    for _ in range(100):
        if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    yield repo, url
    terminate(daemon)


def test_first_sync_update_and_broken_updates_keep_the_last_good_copy(upstream, tmp_path):
    repo, url = upstream
    root = tmp_path / "examples-repo"
    first = sync(root, shipped=SHIPPED, git_url=url, ref="main")
    assert first.ok and first.files == 2, first
    assert "print('v1')" in (current(root) / "common" / "tour.ipynb").read_text()
    assert not (current(root) / "scipy" / "analysis.ipynb").stat().st_mode & 0o222  # read-only

    commit(repo, {"common/tour.ipynb": notebook("print('v2')")}, "update")
    second = sync(root, shipped=SHIPPED, git_url=url, ref="main")
    assert second.ok and second.revision != first.revision
    assert "print('v2')" in (current(root) / "common" / "tour.ipynb").read_text()

    commit(repo, {"scipy/broken.ipynb": "{not json"}, "broken notebook")
    bad = sync(root, shipped=SHIPPED, git_url=url, ref="main")
    assert not bad.ok and "scipy/broken.ipynb is not a valid notebook" in bad.message
    assert "the last good copy is kept" in bad.message
    assert not (current(root) / "scipy" / "broken.ipynb").exists()
    assert read_status(root) == bad  # tkhub status reads this

    git(repo, "rm", "-q", "scipy/broken.ipynb")
    result = nbformat.v4.new_output("execute_result", {"text/plain": "1"}, execution_count=1)
    ran = nbformat.v4.new_code_cell("1", execution_count=1, outputs=[result])
    with_output = nbformat.v4.new_notebook(cells=[ran])
    commit(repo, {"scipy/run.ipynb": nbformat.writes(with_output)}, "outputs")
    outputs = sync(root, shipped=SHIPPED, git_url=url, ref="main")
    assert not outputs.ok and "scipy/run.ipynb has outputs" in outputs.message

    git(repo, "rm", "-q", "scipy/run.ipynb")
    with open(repo / "datasets.bin", "wb") as big:
        big.truncate(500 * 2**20)  # 500 MB of zeros: cheap to store, refused all the same
    commit(repo, {}, "a 500 MB file")
    huge = sync(root, shipped=SHIPPED, git_url=url, ref="main")
    assert not huge.ok and "datasets.bin is 500 MiB" in huge.message
    assert "print('v2')" in (current(root) / "common" / "tour.ipynb").read_text()
    assert len(list((root / "versions").iterdir())) == 1  # nothing half-done is left


def test_a_source_that_cannot_be_fetched_says_why(tmp_path):
    root = tmp_path / "examples-repo"
    status = sync(root, shipped=SHIPPED, git_url=f"git://127.0.0.1:{free_port()}/x.git")
    assert not status.ok and "git clone failed" in status.message
    assert "no copy yet" in status.message and not current(root).exists()


def test_readers_never_see_half_a_tree(tmp_path):
    """Each version's files carry the same stamp; readers resolve ``current`` once
    and must find one stamp throughout, while syncs swap versions under them."""
    source = tmp_path / "source"
    root = tmp_path / "examples-repo"
    problems: list[str] = []
    stop = threading.Event()

    def write_version(n: int) -> None:
        shutil.rmtree(source, ignore_errors=True)
        for i in range(40):
            path = source / "scipy" / f"nb{i:02d}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(notebook(f"stamp = {n}"))

    def reader() -> None:
        while not stop.is_set():
            try:
                tree = current(root).resolve(strict=True)
                texts = {re.search(r"stamp = \d+", p.read_text()).group(0)
                         for p in (tree / "scipy").iterdir()}  # fmt: skip
            except FileNotFoundError:
                continue  # an old version removed after the reader resolved it
            if len(texts) > 1:
                problems.append(f"mixed tree {tree}: {len(texts)} versions")

    write_version(0)
    assert sync(root, shipped=source).ok
    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for n in range(1, 15):
        write_version(n)
        assert sync(root, shipped=source).ok
    stop.set()
    for t in threads:
        t.join()
    assert not problems, problems[:3]


def test_syncs_at_the_same_time_take_turns(tmp_path):
    """The service and a manual sync (or a CronJob and the install Job) at once: every
    sync succeeds and ``current`` points at a whole version."""
    root = tmp_path / "examples-repo"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: sync(root, shipped=SHIPPED), range(8)))
    assert all(r.ok for r in results), [r.message for r in results if not r.ok]
    assert (current(root) / "common" / "where-things-live.ipynb").is_file()
    assert [p.name for p in (root / "versions").iterdir()] == [current(root).resolve().name]


def test_a_source_at_the_served_revision_is_not_fetched_again(upstream, tmp_path):
    repo, url = upstream
    root = tmp_path / "examples-repo"
    first = sync(root, shipped=SHIPPED, git_url=url)
    served = current(root).resolve()
    again = sync(root, shipped=SHIPPED, git_url=url)
    assert again.ok and again.message == "unchanged (2 files)" and again.revision == first.revision
    assert current(root).resolve() == served  # nothing swapped
    forced = sync(root, shipped=SHIPPED, git_url=url, force=True)
    assert forced.ok and current(root).resolve() != served
