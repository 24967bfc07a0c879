"""Which notebook a job may name, and where its output and log go.

A job names a notebook by its path under the user's ``notebooks/`` folder. Anything
that leads outside it is refused before a job exists: ``..``, an absolute path
elsewhere, a symbolic link out. (The run itself happens as the user, so even a file
swapped afterwards is read with the user's own rights.)
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

MAX_PATH = 1024


class NotebookRefused(ValueError):
    """The notebook path cannot be a job's; ``str()`` says why, for the user."""


def notebook_path(notebooks: Path, given: str, whose: str = "your") -> PurePosixPath:
    """``given`` as a path relative to ``notebooks``, after every check (an absolute
    path is accepted when it lies in ``notebooks``). ``whose`` names the folder's
    owner in a refusal ("your", or "alice's" when an admin names the user)."""
    text = given.strip()
    if not text or len(text) > MAX_PATH or "\0" in text:
        raise NotebookRefused(f"notebook: give the path of a notebook in {whose} notebooks folder")
    if not text.endswith(".ipynb"):
        raise NotebookRefused(f"notebook: {given!r} is not a notebook (.ipynb)")
    relative = _relative(notebooks, text, whose)
    if any(part == ".." for part in relative.parts):
        raise NotebookRefused(f"notebook: {given!r} leads outside {whose} notebooks folder")
    root = notebooks.resolve()
    target = (notebooks / relative).resolve()
    if not target.is_relative_to(root):
        raise NotebookRefused(f"notebook: {given!r} leads outside {whose} notebooks folder")
    if not target.is_file():
        raise NotebookRefused(f"notebook: {relative} does not exist in {whose} notebooks folder")
    return PurePosixPath(target.relative_to(root).as_posix())


def _relative(notebooks: Path, text: str, whose: str) -> PurePosixPath:
    if not text.startswith("/"):
        return PurePosixPath(text)
    path, root = PurePosixPath(os.path.normpath(text)), PurePosixPath(str(notebooks))
    if not path.is_relative_to(root):
        raise NotebookRefused(f"notebook: {text!r} is not in {whose} notebooks folder")
    return path.relative_to(root)


def run_files(notebook: PurePosixPath, job_id: int) -> tuple[PurePosixPath, PurePosixPath]:
    """``NAME.run-<id>.ipynb`` and ``NAME.run-<id>.log`` next to the notebook."""
    stem = notebook.name.removesuffix(".ipynb")
    return (
        notebook.with_name(f"{stem}.run-{job_id}.ipynb"),
        notebook.with_name(f"{stem}.run-{job_id}.log"),
    )


def read_tail(notebooks: Path, relative: str, limit: int, owner: int | None = None) -> str:
    """The last ``limit`` bytes of a run's file in the user's notebooks, read as safely
    as the user could: never through a link out of the folder, nor (with ``owner``)
    a file the user does not own."""
    root = notebooks.resolve()
    try:
        real = (notebooks / relative).resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        return ""  # not started yet
    if not real.is_relative_to(root):
        return "(the log is no longer a file in your notebooks folder)"
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        if owner is not None and os.fstat(f.fileno()).st_uid != owner:
            return "(the log is not your file)"
        size = os.fstat(f.fileno()).st_size
        f.seek(max(0, size - limit))
        return f.read(limit).decode(errors="replace")
