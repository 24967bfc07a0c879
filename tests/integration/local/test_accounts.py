"""System accounts made for real (``useradd``/``groupadd``): needs root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.mark.skipif(os.geteuid() != 0, reason="creates system accounts")
def test_an_account_is_created_even_if_its_group_was_left_behind(tmp_path: Path) -> None:
    import grp
    import subprocess

    from tkhub.local.accounts import ensure_account, remove_account

    name = "tk-leftover-grp"
    subprocess.run(["groupadd", "--system", name], check=True)
    try:
        account = ensure_account(name, tmp_path / "home")
        assert account.gid == grp.getgrnam(name).gr_gid
    finally:
        remove_account(name)
        subprocess.run(["groupdel", name], check=False, capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="creates system accounts")
def test_first_spawns_at_once_all_get_their_accounts(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tkhub.local.accounts import ensure_account, remove_account

    names = [f"tk-at-once-{i}" for i in range(6)]
    try:
        with ThreadPoolExecutor(len(names)) as pool:
            made = list(pool.map(lambda n: ensure_account(n, tmp_path / n), names))
        assert sorted(a.name for a in made) == names
        assert len({a.uid for a in made}) == len(names)
    finally:
        for name in names:
            remove_account(name)
