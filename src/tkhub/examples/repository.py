"""The synced examples repository: fetched whole, validated, then swapped in at once.

Layout under ``root`` (``<data>/shared/examples-repo`` on one machine, the examples
volume in a cluster)::

    current -> versions/<id>     what servers and users read (a symlink)
    versions/<id>/               one complete, validated copy; read-only
    sync.json                    the last sync: when, from where, which commit, result

A sync fills ``versions/.incoming-*``, validates it, renames it to its id and points
``current`` at it with one ``rename``: a reader sees the old tree or the new one,
never half of either. A failing sync leaves ``current`` as it was and says why.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from tkhub.files import write_atomic

CURRENT = "current"
VERSIONS = "versions"
STATUS = "sync.json"
LOCK = ".sync.lock"
MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_TOTAL_BYTES = 200 * 1024 * 1024
GIT_TIMEOUT = 300.0


class SyncFailed(RuntimeError):
    """The sync did not change the served copy; ``str()`` says why."""


@dataclass(frozen=True)
class SyncStatus:
    finished_at: str
    source: str
    revision: str
    ok: bool
    message: str
    files: int = 0


def current(root: Path) -> Path:
    """The served copy (``root/current``), whatever version it points at."""
    return root / CURRENT


def read_status(root: Path) -> SyncStatus | None:
    try:
        return SyncStatus(**json.loads((root / STATUS).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def validate_tree(tree: Path) -> int:
    """Check every notebook (valid nbformat, outputs stripped) and the size limits;
    the number of files, or SyncFailed naming the first problem."""
    total, count = 0, 0
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree)
        if rel.parts[0] == ".git" or not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SyncFailed(f"{rel} is {size // 2**20} MiB; a file may have at most "
                             f"{MAX_FILE_BYTES // 2**20} MiB")  # fmt: skip
        total, count = total + size, count + 1
        if total > MAX_TOTAL_BYTES:
            raise SyncFailed(f"the examples exceed {MAX_TOTAL_BYTES // 2**20} MiB in all")
        if path.suffix == ".ipynb":
            _check_notebook(path, rel)
    if count == 0:
        raise SyncFailed("the source holds no files")
    return count


def _check_notebook(path: Path, rel: Path) -> None:
    import nbformat  # slow to import (jsonschema): only a sync needs it

    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except Exception as e:  # noqa: BLE001 - nbformat raises many kinds; all mean "invalid"
        raise SyncFailed(f"{rel} is not a valid notebook ({type(e).__name__}: {e})"[:400]) from e
    for cell in notebook.cells:
        if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count")):
            raise SyncFailed(f"{rel} has outputs; strip them (jupyter nbconvert --clear-output)")


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
            timeout=GIT_TIMEOUT, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SyncFailed(f"git {args[0]}: {e}") from e
    if done.returncode != 0:
        raise SyncFailed(f"git {args[0]} failed: {done.stderr.strip()[-400:]}")
    return done.stdout.strip()


def remote_revision(url: str, ref: str) -> str:
    """The commit ``ref`` names at ``url`` (one round trip, nothing fetched)."""
    out = _git("ls-remote", "--", url, ref)
    if not out:
        raise SyncFailed(f"git ls-remote: {url} has no branch or tag {ref!r}")
    return out.split()[0]


def shipped_revision(source: Path) -> str:
    """A fingerprint of the shipped tree (names, sizes, times): unchanged, no copy."""
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*")):
        if path.is_file():
            st = path.stat()
            digest.update(f"{path.relative_to(source)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return "shipped-" + digest.hexdigest()[:16]


def fetch_git(url: str, ref: str, into: Path) -> str:
    """A shallow clone of ``ref`` into ``into`` (without .git); the commit id."""
    _git("clone", "--quiet", "--depth", "1", "--branch", ref, "--", url, str(into))
    commit = _git("rev-parse", "HEAD", cwd=into)
    shutil.rmtree(into / ".git")
    return commit


def copy_shipped(source: Path, into: Path) -> str:
    revision = shipped_revision(source)
    shutil.copytree(source, into, symlinks=False)
    return revision


def _make_readable(tree: Path) -> None:
    """Read-only for everyone (users get a view, never a writable copy)."""
    for dirpath, _dirs, files in os.walk(tree):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o444)


def _swap(root: Path, version: Path) -> None:
    link = root / f".{CURRENT}-{secrets.token_hex(4)}"
    link.symlink_to(version.relative_to(root))
    os.replace(link, current(root))  # rename(2): readers see one tree or the other


def _prune(root: Path, keep: Path) -> None:
    """Versions other than the served one; a reader that resolved an old one keeps
    its open files (removal only unlinks)."""
    for old in (root / VERSIONS).iterdir():
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _one_sync_at_a_time(root: Path) -> Iterator[None]:
    """Syncs of one root take turns (the service and a manual sync; a CronJob and the
    install Job): one's pruning must not remove the other's new version."""
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def sync(
    root: Path, *, shipped: Path, git_url: str | None = None, ref: str = "main",
    force: bool = False,
) -> SyncStatus:  # fmt: skip
    """Fetch, validate and serve the examples; the status recorded (ok or not). A
    source still at the served revision is not fetched again unless ``force``."""
    root.mkdir(parents=True, exist_ok=True)
    with _one_sync_at_a_time(root):
        return _sync(root, shipped, git_url, ref, force)


def _unchanged(root: Path, git_url: str | None, ref: str, shipped: Path) -> SyncStatus | None:
    """The last good sync, when the source still is at its revision (nothing to fetch)."""
    last = read_status(root)
    if last is None or not last.ok or not current(root).is_dir():
        return None
    revision = remote_revision(git_url, ref) if git_url else shipped_revision(shipped)
    if revision != last.revision:
        return None
    return SyncStatus(_now(), last.source, revision, True, f"unchanged ({last.files} files)",
                      last.files)  # fmt: skip


def _sync(root: Path, shipped: Path, git_url: str | None, ref: str, force: bool) -> SyncStatus:
    source = f"{git_url}@{ref}" if git_url else "shipped examples"
    (root / VERSIONS).mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    incoming = root / VERSIONS / f".incoming-{secrets.token_hex(4)}"
    try:
        same = None if force else _unchanged(root, git_url, ref, shipped)
        if same is not None:
            write_atomic(root / STATUS, json.dumps(asdict(same), indent=2), mode=0o644)
            return same
        revision = fetch_git(git_url, ref, incoming) if git_url else copy_shipped(shipped, incoming)
        files = validate_tree(incoming)
        _make_readable(incoming)
        version = root / VERSIONS / f"{int(time.time())}-{secrets.token_hex(3)}"
        incoming.rename(version)
        _swap(root, version)
        _prune(root, version)
        status = SyncStatus(_now(), source, revision, True, f"{files} files", files)
    except SyncFailed as e:
        kept = "the last good copy is kept" if current(root).exists() else "no copy yet"
        status = SyncStatus(_now(), source, "", False, f"{e}; {kept}")
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    write_atomic(root / STATUS, json.dumps(asdict(status), indent=2), mode=0o644)
    return status


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    """``python -m tkhub.examples --root DIR [--git-url URL --ref REF]``: one sync (the
    Kubernetes Job and CronJob run it with the examples volume at DIR)."""
    import argparse

    from tkhub.examples import shipped_examples

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--git-url", default=None)
    parser.add_argument("--ref", default="main")
    args = parser.parse_args(argv)
    status = sync(args.root, shipped=shipped_examples(), git_url=args.git_url, ref=args.ref)
    print(json.dumps(asdict(status)))
    return 0 if status.ok else 1
