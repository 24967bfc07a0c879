"""The user file layout (docs/architecture.md, "Files"), named once, and safe names for users.

A user's home is ``<data>/users/<escaped>/``. Inside it::

    thinkube/                      the server's root: what the file browser reaches
    thinkube/notebooks/            own, persistent; JupyterLab opens here
    thinkube/notebooks/examples/   editable copies of examples
    thinkube/datasets  -> <data>/shared/datasets   shared, persistent
    thinkube/models    -> <data>/shared/models     shared, persistent
    thinkube/examples-repo -> <data>/shared/examples-repo   the synced examples (read-only)
    thinkube/notebooks/templates -> ../examples-repo/current
    scratch/                       emptied when the server stops

Escaping keeps every username (``../x``, ``a/b``, unicode, 300 characters) to
one path component inside ``users/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

import escapism

ROOT = Path("thinkube")
NOTEBOOKS = ROOT / "notebooks"
EXAMPLES = NOTEBOOKS / "examples"
DATASETS = Path("thinkube/datasets")
MODELS = Path("thinkube/models")
EXAMPLES_REPO = Path("thinkube/examples-repo")
SCRATCH = Path("scratch")
SHARED_NAMES = ("datasets", "models", "examples-repo")  # links into <data>/shared
# Where a new server opens: JupyterLab with its file browser in notebooks. The
# server's root is ROOT, so the browser also reaches datasets, models, examples.
DEFAULT_URL = f"/lab/tree/{NOTEBOOKS.relative_to(ROOT)}"

_SAFE = set(string.ascii_lowercase + string.digits)
MAX_DIR_NAME = 64


def name_digest(name: str, length: int = 8) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:length]


def escape_username(name: str) -> str:
    """One lowercase path component for ``name``; long names end in a hash of the name."""
    if not name:
        raise ValueError("username: must not be empty")
    # Every "-" in the result starts an escape, so lowercasing the hex stays one-to-one.
    escaped = escapism.escape(name, safe=_SAFE, escape_char="-").lower()
    if len(escaped) > MAX_DIR_NAME:
        escaped = f"{escaped[: MAX_DIR_NAME - 9]}-{name_digest(name)}"
    return escaped


@dataclass(frozen=True)
class UserLayout:
    """The paths of one user's home under a data directory."""

    home: Path
    shared: Path

    @classmethod
    def for_user(cls, users_dir: Path, shared_dir: Path, username: str) -> UserLayout:
        home = users_dir / escape_username(username)
        if home.resolve().parent != users_dir.resolve():
            raise ValueError(f"username: {username!r} does not map inside {users_dir}")
        return cls(home=home, shared=shared_dir)

    @property
    def root(self) -> Path:
        """The server's root directory (JupyterLab's file browser cannot go above it)."""
        return self.home / ROOT

    @property
    def notebooks(self) -> Path:
        return self.home / NOTEBOOKS

    @property
    def scratch(self) -> Path:
        return self.home / SCRATCH

    def own_dirs(self) -> list[Path]:
        return [self.home / p for p in (NOTEBOOKS, EXAMPLES, SCRATCH)]


WRITABLE_SHARED = ("datasets", "models")


def ensure_shared(shared_dir: Path, gid: int | None = None) -> None:
    """``shared/{datasets,models}``: group-writable (setgid) when a shared group is given."""
    (shared_dir / "examples-repo").mkdir(parents=True, exist_ok=True)  # the sync fills it
    for name in WRITABLE_SHARED:
        path = shared_dir / name
        path.mkdir(parents=True, exist_ok=True)
        if gid is not None:
            os.chown(path, -1, gid)
            path.chmod(0o2770)


def ensure_layout(layout: UserLayout, uid: int | None = None, gid: int | None = None) -> None:
    """Create the home (0700) and its tree; idempotent. Owned by ``uid`` when given."""
    layout.home.parent.mkdir(parents=True, exist_ok=True)
    layout.home.mkdir(mode=0o700, exist_ok=True)
    for path in layout.own_dirs():
        path.mkdir(parents=True, exist_ok=True)
    for name in SHARED_NAMES:
        link = layout.home / "thinkube" / name
        if link.is_dir() and not link.is_symlink() and not any(link.iterdir()):
            link.rmdir()  # an empty examples-repo/ made by an earlier release
        if not link.is_symlink() and not link.exists():
            link.symlink_to(layout.shared / name)
    if uid is not None:
        for path in [layout.home, *_tree_dirs(layout)]:
            os.chown(path, uid, gid if gid is not None else -1, follow_symlinks=False)
    layout.home.chmod(0o700)


def _tree_dirs(layout: UserLayout) -> list[Path]:
    thinkube = layout.home / "thinkube"
    links = [thinkube / name for name in SHARED_NAMES]
    return [thinkube, *layout.own_dirs(), *links]


def clear_scratch(layout: UserLayout) -> None:
    """Empty ``scratch/`` (keeps the directory itself)."""
    if not layout.scratch.is_dir() or layout.scratch.is_symlink():
        return
    for child in layout.scratch.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
