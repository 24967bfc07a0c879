"""Locks: ``requirements.lock`` compiled by ``uv pip compile`` from a definition's
requirements and its ancestors' (a child's lock is the whole environment).

Locks are made for the Python and platform the environments run on: Debian 12's
Python 3.11 on x86_64 Linux (images build FROM a Debian base; ``tkhub env create``
uses the system Python). A new child lock starts from its parent's pins (uv keeps
the versions already in its output file where it can), so an image built on its
parent reinstalls only what differs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tkhub.environments.definition import Definition, ancestors, requirement_inputs

LOCK_PYTHON = "3.11"
LOCK_PLATFORM = "x86_64-manylinux_2_28"


class LockError(RuntimeError):
    """uv could not compile or resolve a lock; ``str()`` carries uv's reason."""


def uv_binary() -> str:
    """uv from this installation (the ``uv`` package), else from PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv") or shutil.which("uv", path=os.path.dirname(sys.executable))
        if not found:
            raise LockError("uv is not installed: pip install uv") from None
        return found


def _uv(args: list[str], cwd: Path, timeout: float) -> None:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    try:
        done = subprocess.run(
            [uv_binary(), *args], cwd=cwd, env=env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise LockError(f"uv did not finish within {timeout:g} s") from None
    if done.returncode != 0:
        reason = "\n".join(done.stderr.strip().splitlines()[-12:])
        raise LockError(reason or f"uv exited {done.returncode}")


def compile_lock(
    definition: Definition,
    known: dict[str, Definition],
    *,
    upgrade: bool = False,
    timeout: float = 600,
) -> Path:
    """(Re)write the definition's lock from its requirements; the lock's path."""
    root = definition.path.parent
    chain = ancestors(definition, known)
    if chain and not definition.lock.exists() and chain[0].lock.exists():
        shutil.copyfile(chain[0].lock, definition.lock)  # start from the parent's pins
    inputs = [str(p.relative_to(root)) for p in requirement_inputs(definition, known)]
    args = [
        "pip", "compile", *inputs,
        "-o", str(definition.lock.relative_to(root)),
        "--python-version", LOCK_PYTHON, "--python-platform", LOCK_PLATFORM,
        "--custom-compile-command", f"tkhub images lock {definition.name}", "--quiet",
    ]  # fmt: skip
    if upgrade:
        args.append("--upgrade")
    _uv(args, root, timeout)
    return definition.lock


def check_lock_resolves(definition: Definition, *, timeout: float = 600) -> None:
    """Resolve the committed lock as it stands (package metadata only, no wheels):
    a pin that was yanked, removed, or clashes with another raises LockError."""
    if not definition.lock.is_file():
        raise LockError(f"{definition.lock}: missing; run tkhub images lock {definition.name}")
    args = [
        "pip", "compile", str(definition.lock), "-o", os.devnull, "--no-header",
        "--python-version", LOCK_PYTHON, "--python-platform", LOCK_PLATFORM, "--quiet",
    ]  # fmt: skip
    _uv(args, definition.path, timeout)
