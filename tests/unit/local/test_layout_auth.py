"""Username escaping, the file layout, reachability checks and the password store."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

import pytest

from tkhub.layout import (
    UserLayout,
    clear_scratch,
    ensure_layout,
    escape_username,
)
from tkhub.local.accounts import system_account_name, unreachable_part
from tkhub.local.password_auth import (
    PasswordAuthenticator,
    UserStore,
    hash_password,
    verify_password,
)

HOSTILE = ["../x", "a/b", "..", ".", "Ünïcode", "x" * 300, "a\x00b", "-rf", "Alice"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_inside_users_dir(name: str, tmp_path: Path) -> None:
    users = tmp_path / "users"
    layout = UserLayout.for_user(users, tmp_path / "shared", name)
    assert layout.home.parent == users
    assert "/" not in escape_username(name) and len(escape_username(name)) <= 64
    account = system_account_name(name)
    assert len(account) <= 32 and account.startswith("tk-")
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in account)


def test_escaping_is_one_to_one_for_case_and_dashes() -> None:
    names = ["alice", "Alice", "a-b", "a/b", "a.b", "a_b"]
    assert len({escape_username(n) for n in names}) == len(names)
    assert len({system_account_name(n) for n in names}) == len(names)


def test_layout_and_scratch(tmp_path: Path) -> None:
    layout = UserLayout.for_user(tmp_path / "users", tmp_path / "shared", "bob")
    ensure_layout(layout)
    assert stat.S_IMODE(layout.home.stat().st_mode) == 0o700
    assert layout.notebooks.is_dir() and layout.scratch.is_dir()
    assert (layout.home / "thinkube/datasets").resolve() == (tmp_path / "shared/datasets")
    (layout.scratch / "d").mkdir()
    (layout.scratch / "f").write_text("x")
    clear_scratch(layout)
    assert list(layout.scratch.iterdir()) == []
    ensure_layout(layout)  # idempotent


def test_unreachable_part_finds_the_closed_directory() -> None:
    root = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        (root / "closed").mkdir(mode=0o700)
        exe = root / "closed" / "python"
        exe.write_text("")
        exe.chmod(0o755)
        os.chmod(root, 0o755)
        assert unreachable_part(exe, 65534, [65534]) == root / "closed"
        (root / "closed").chmod(0o755)
        assert unreachable_part(exe, 65534, [65534]) is None
    finally:
        import shutil

        shutil.rmtree(root)


def test_password_store(tmp_path: Path) -> None:
    encoded = hash_password("s3cret")
    assert verify_password("s3cret", encoded) and not verify_password("nope", encoded)
    store = UserStore(tmp_path / "secrets" / "users.json")
    store.add("Carol", "pw1", admin=True)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.verify("carol", "pw1") == store.load()["carol"]
    assert store.verify("carol", "bad") is None and store.verify("nobody", "pw1") is None
    store.set_password("carol", "pw2")
    assert store.verify("carol", "pw2")
    with pytest.raises(KeyError):
        store.add("carol", "again")
    store.remove("carol")
    assert store.load() == {}


async def test_the_password_check_runs_off_the_hubs_event_loop(tmp_path: Path, monkeypatch) -> None:
    """scrypt takes tens of milliseconds: on the loop, 20 sign-ins at once would stall
    every other request of the hub (bench/signin.py measures it)."""
    store = tmp_path / "users.json"
    UserStore(store).add("ada", "correct horse", admin=False)
    checked_in: list[int] = []
    verify = UserStore.verify

    def recording(self: UserStore, name: str, password: str):  # type: ignore[no-untyped-def]
        checked_in.append(threading.get_ident())
        return verify(self, name, password)

    monkeypatch.setattr(UserStore, "verify", recording)
    auth = PasswordAuthenticator(users_file=str(store))
    signed_in = await auth.authenticate(None, {"username": "Ada", "password": "correct horse"})
    assert signed_in == {"name": "ada", "admin": False}
    assert await auth.authenticate(None, {"username": "ada", "password": "wrong"}) is None
    assert checked_in and threading.get_ident() not in checked_in
