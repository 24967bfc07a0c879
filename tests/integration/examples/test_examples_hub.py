"""End to end through ``tkhub up``: examples synced from a git repository by the hub's
examples service, delivered at spawn, an edit kept across an upstream update."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from hubproc import account_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from local_hub import TKHUB, running_tkhub_up  # noqa: E402


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def publish(repo: Path, files: dict[str, str]) -> None:
    for name, code in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), path)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "publish")


def wait_synced(examples: Path, revision_not: str = "", timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = json.loads((examples / "sync.json").read_text())
            if status["ok"] and status["revision"] != revision_not:
                return status
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"examples not synced: {(examples / 'sync.json').read_text()}")


def test_spawn_delivers_and_an_edit_survives_an_update():
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-up-"))
    root.chmod(0o755)
    repo = root / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    publish(repo, {"common/tour.ipynb": "print('tour v1')",
                   "scipy/analysis.ipynb": "print('analysis v1')",
                   "scipy/kept.ipynb": "print('kept v1')"})  # fmt: skip
    data = root / "data"
    data.mkdir()
    (data / "tkhub.yaml").write_text(f"examples_git_url: file://{repo}\nexamples_git_ref: main\n")
    with running_tkhub_up(root=root) as hub:
        examples = data / "shared" / "examples-repo"
        first = wait_synced(examples)
        entry = {"name": "sci", "kind": "local", "python": sys.executable, "examples": "scipy"}
        assert hub.catalog("POST", "/images", json=entry).status_code == 201
        hub.add_user("alice")
        assert hub.spawn("alice", {"image": "sci"}).status_code in (201, 202)
        hub.wait_ready("alice")
        notebooks = data / "users" / "alice" / "thinkube" / "notebooks"
        delivered = notebooks / "examples" / "scipy"
        said = [line for line in hub.printed().splitlines() if "xamples" in line]
        assert delivered.is_dir(), "\n".join(said[-10:])
        assert sorted(p.name for p in delivered.iterdir()) == [
            "analysis.ipynb",
            "kept.ipynb",
            "tour.ipynb",
        ]
        if os.geteuid() == 0:  # delivered as the user, not as root
            assert (delivered / "analysis.ipynb").owner() == account_of("alice")
        assert (notebooks / "templates" / "scipy" / "kept.ipynb").is_file()  # read-only view
        assert "Examples in notebooks/examples/scipy: 3 new, 0 updated" in hub.printed()

        mine = (delivered / "analysis.ipynb").read_text().replace("analysis v1", "my own work")
        (delivered / "analysis.ipynb").write_text(mine)
        hub.stop("alice")
        publish(repo, {"scipy/analysis.ipynb": "print('analysis v2')",
                       "scipy/kept.ipynb": "print('kept v2')"})  # fmt: skip
        synced = subprocess.run([TKHUB, "examples", "sync", "--data-dir", str(data)],
                                capture_output=True, text=True)  # fmt: skip
        assert synced.returncode == 0 and "Examples sync ok" in synced.stdout, synced.stderr
        wait_synced(examples, revision_not=first["revision"])

        assert hub.spawn("alice", {"image": "sci"}).status_code in (201, 202)
        hub.wait_ready("alice")
        assert "my own work" in (delivered / "analysis.ipynb").read_text()  # never overwritten
        assert "analysis v2" in (delivered / "analysis.updated.ipynb").read_text()
        assert "kept v2" in (delivered / "kept.ipynb").read_text()  # unedited: updated
        assert "you edited analysis.ipynb" in hub.printed()
        status = subprocess.run([TKHUB, "status", "--data-dir", str(data)],
                                capture_output=True, text=True)  # fmt: skip
        assert "Examples:" in status.stdout and "ok" in status.stdout, status.stdout
        hub.stop("alice")

        hub.add_user("bob")  # the default environment names no examples folder of its own
        assert hub.spawn("bob", {}).status_code in (201, 202)
        hub.wait_ready("bob")
        common = data / "users" / "bob" / "thinkube" / "notebooks" / "examples" / "common"
        assert common.is_dir() and sorted(p.name for p in common.iterdir()) == ["tour.ipynb"]
        hub.stop("bob")
