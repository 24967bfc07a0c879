"""System accounts made for real (``useradd``/``groupadd``): needs root.

Every name here starts with this run's test prefix, so an install on the same
machine (``tk-*``) is never touched.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubproc import TEST_ACCOUNT_PREFIX

from tkhub.local.accounts import (
    AccountError,
    AccountNotOurs,
    ensure_account,
    install_marker,
    remove_account,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates system accounts")


@pytest.fixture
def marker(tmp_path: Path) -> str:
    return install_marker(tmp_path / "data")


@pytest.fixture
def made(marker: str) -> Iterator[list[str]]:
    """Names this test makes; removed afterwards with their groups."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            remove_account(name, marker)
        except AccountNotOurs:
            subprocess.run(["userdel", name], check=False, capture_output=True)
        subprocess.run(["groupdel", name], check=False, capture_output=True)


def free_id(start: int) -> int:
    """A uid and gid in use by neither an account nor a group, from ``start`` on."""
    taken = {e.pw_uid for e in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    return next(i for i in range(start, start + 10_000) if i not in taken)


def test_an_account_is_created_even_if_its_group_was_left_behind(
    tmp_path: Path, marker: str, made: list[str]
) -> None:
    name = f"{TEST_ACCOUNT_PREFIX}leftover-grp"
    subprocess.run(["groupadd", "--system", name], check=True)
    made.append(name)
    account = ensure_account(name, tmp_path / "home", marker)
    assert account.gid == grp.getgrnam(name).gr_gid


def test_first_spawns_at_once_all_get_their_accounts(
    tmp_path: Path, marker: str, made: list[str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    names = [f"{TEST_ACCOUNT_PREFIX}at-once-{i}" for i in range(6)]
    made.extend(names)
    with ThreadPoolExecutor(len(names)) as pool:
        accounts = list(pool.map(lambda n: ensure_account(n, tmp_path / n, marker), names))
    assert sorted(a.name for a in accounts) == names
    assert len({a.uid for a in accounts}) == len(names)
    assert {pwd.getpwnam(n).pw_gecos for n in names} == {marker}


def test_an_account_of_another_install_is_refused_and_left_as_it_is(
    tmp_path: Path, marker: str, made: list[str]
) -> None:
    name = f"{TEST_ACCOUNT_PREFIX}theirs"
    made.append(name)
    theirs = ensure_account(name, tmp_path / "their-home", marker)
    ours = install_marker(tmp_path / "another-data")

    with pytest.raises(AccountNotOurs, match="this tkhub install did not create it") as refused:
        ensure_account(name, tmp_path / "our-home", ours)
    said = str(refused.value)  # whose it is, and the two ways out
    assert f"the tkhub install at {marker.removeprefix('tkhub ')} made it" in said
    assert "account_prefix: lab-" in said and f"userdel {name}" in said
    with pytest.raises(AccountNotOurs):
        remove_account(name, ours)
    entry = pwd.getpwnam(name)
    assert (entry.pw_uid, entry.pw_dir, entry.pw_gecos) == (
        theirs.uid,
        str(tmp_path / "their-home"),
        marker,
    )


def test_an_account_made_by_hand_is_refused(tmp_path: Path, marker: str, made: list[str]) -> None:
    name = f"{TEST_ACCOUNT_PREFIX}by-hand"
    subprocess.run(["useradd", "--system", "--no-create-home", name], check=True)
    made.append(name)
    with pytest.raises(AccountNotOurs, match="comment is 'empty'"):
        ensure_account(name, tmp_path / "home", marker)
    assert pwd.getpwnam(name).pw_gecos == ""


def test_an_account_deleted_by_hand_comes_back_owning_its_home(
    tmp_path: Path, marker: str, made: list[str]
) -> None:
    name = f"{TEST_ACCOUNT_PREFIX}returning"
    made.append(name)
    reachable = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-home-"))  # tmp_path is 0700
    reachable.chmod(0o755)
    home = reachable / "home"
    home.mkdir()
    notebook = home / "work.ipynb"
    notebook.write_text("{}")
    old = free_id(61000)  # an id the default allocation would not pick
    for path in (home, notebook):
        os.chown(path, old, old)

    account = ensure_account(name, home, marker)

    assert (account.uid, account.gid) == (old, old)
    assert grp.getgrgid(old).gr_name == name
    try:
        read = subprocess.run(["runuser", "-u", name, "--", "cat", str(notebook)],
                              capture_output=True, text=True, check=False)  # fmt: skip
    finally:
        shutil.rmtree(reachable)
    assert read.stdout == "{}", read.stderr


def test_a_home_whose_uid_went_to_another_account_is_refused(
    tmp_path: Path, marker: str, made: list[str]
) -> None:
    other, name = f"{TEST_ACCOUNT_PREFIX}took-uid", f"{TEST_ACCOUNT_PREFIX}lost-uid"
    made.extend([other, name])
    taker = ensure_account(other, tmp_path / "other", marker)
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, taker.uid, taker.gid)

    with pytest.raises(AccountError, match=f"which is now the account {other}"):
        ensure_account(name, home, marker)
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
