"""One ``tkhub up`` per data directory: the lock, held by another process or left behind."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tkhub.local import datadir_lock

HOLD = (
    "import sys, time; from pathlib import Path; from tkhub.local import datadir_lock; "
    "datadir_lock.acquire(Path(sys.argv[1]), 'http://127.0.0.1:8000'); "
    "print('held', flush=True); time.sleep(60)"
)


def test_a_held_directory_is_refused_with_who_holds_it_and_freed_when_it_ends(tmp_path):
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout.readline().strip() == "held"
        before = (tmp_path / datadir_lock.LOCK_FILE).read_text()
        with pytest.raises(datadir_lock.DataDirInUse) as info:
            datadir_lock.acquire(tmp_path, "http://127.0.0.1:9000")
        assert str(info.value) == (
            "tkhub is already running on this data directory "
            f"(pid {other.pid}, http://127.0.0.1:8000)"
        )
        assert (tmp_path / datadir_lock.LOCK_FILE).read_text() == before  # nothing written
        assert datadir_lock.holder(tmp_path) == f"pid {other.pid}, http://127.0.0.1:8000"
    finally:
        other.kill()
        other.wait()
    assert datadir_lock.holder(tmp_path) is None
    fd, note = datadir_lock.acquire(tmp_path, "http://127.0.0.1:9000")
    assert note == (
        "took over the data directory from a run that ended "
        f"(pid {other.pid}, http://127.0.0.1:8000)"
    )
