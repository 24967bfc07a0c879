"""One ``tkhub up`` per data directory: an exclusive ``flock`` held for its lifetime.

The lock file (``state/tkhub.lock``) says who holds it (pid and address). The lock
is the kernel's, so a run that crashed leaves none behind: the next ``tkhub up``
takes it and says whose stale record it replaced. The descriptor is inheritable,
so it stays held when ``tkhub up`` becomes its supervisor (same pid, ``execve``).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from pathlib import Path

LOCK_FILE = "tkhub.lock"


class DataDirInUse(Exception):
    """Another ``tkhub up`` holds the data directory; ``str()`` says which."""


def _describe(record: dict[str, object]) -> str:
    return f"pid {record.get('pid', '?')}, {record.get('url', 'address unknown')}"


def _read(fd: int) -> dict[str, object]:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        record = json.loads(os.read(fd, 4096) or b"{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def acquire(state_dir: Path, url: str) -> tuple[int, str | None]:
    """Hold the data directory's lock: (descriptor, note on a stale record taken over).

    Raises ``DataDirInUse`` at once, touching nothing, when another run holds it.
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        record = _read(fd)
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        raise DataDirInUse(
            f"tkhub is already running on this data directory ({_describe(record)})"
        ) from None
    stale = _read(fd)
    note = None
    if stale.get("pid") and stale.get("pid") != os.getpid():
        note = f"took over the data directory from a run that ended ({_describe(stale)})"
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps({"pid": os.getpid(), "url": url}).encode())
    os.set_inheritable(fd, True)  # kept by the supervisor ``tkhub up`` becomes
    return fd, note


def holder(state_dir: Path) -> str | None:
    """Who holds the lock now ("pid N, URL"), or None when no ``tkhub up`` runs."""
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _describe(_read(fd))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
