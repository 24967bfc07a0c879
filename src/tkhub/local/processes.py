"""Knowing a process again after a restart: its pid and the time it started.

A pid alone is not an identity: after a crash or a reboot the kernel hands the same
number to an unrelated process, which would then keep a GPU booked forever, or be
signalled by a stop meant for the server that is gone. The start time
(``/proc/<pid>/stat``, read by psutil) tells them apart.
"""

from __future__ import annotations

import psutil

SAME_START_SECONDS = 0.5  # psutil derives it from clock ticks since boot


def start_time(pid: int) -> float | None:
    """When ``pid`` started (seconds since the epoch); None when no such process runs."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, ValueError):
        return None


def is_same_process(pid: object, started: object) -> bool:
    """Whether ``pid`` still runs and is the process that started at ``started``.

    ``started`` None (a record from before start times were kept) falls back to
    whether the pid exists at all.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is None:
            return True
        return abs(proc.create_time() - float(started)) < SAME_START_SECONDS  # type: ignore[arg-type]
    except (psutil.Error, TypeError, ValueError):
        return False
