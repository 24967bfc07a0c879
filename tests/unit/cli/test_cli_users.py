"""``tkhub users`` on a temporary data directory: the real accounts file, no hub."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tkhub.cli import app
from tkhub.local.password_auth import UserStore


def users(data: Path, *args: str) -> Result:
    return CliRunner().invoke(
        app, ["users", *args, "--data-dir", str(data)], env={"COLUMNS": "200"}
    )


def accounts(data: Path) -> Path:
    return data / "secrets" / "users.json"


def generated(result: Result, name: str) -> str:
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith(f"Password for {name}: ")]
    assert len(lines) == 1, result.output
    return lines[0].split(": ", 1)[1]


def refused(result: Result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_add_generates_a_password_that_signs_in(tmp_path: Path) -> None:
    result = users(tmp_path, "add", "Alice")

    assert result.exit_code == 0, result.output
    assert "Added user alice." in result.stdout
    password = generated(result, "alice")
    store = UserStore(accounts(tmp_path))
    assert store.verify("alice", password) == store.load()["alice"]
    assert store.verify("alice", password + "x") is None
    assert stat.S_IMODE(accounts(tmp_path).stat().st_mode) == 0o600
    assert password not in accounts(tmp_path).read_text()


def test_add_admin_from_a_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("correct horse battery\nsecond line ignored\n")

    result = users(tmp_path, "add", "root2", "--admin", "--password-file", str(secret))

    assert result.exit_code == 0, result.output
    assert "Password for" not in result.output  # the admin chose it: nothing to show
    store = UserStore(accounts(tmp_path))
    assert store.verify("root2", "correct horse battery") is not None
    assert store.load()["root2"]["admin"] is True
    listed = users(tmp_path, "list")
    assert "root2 │ yes" in listed.stdout


def test_duplicate_is_refused_and_the_file_is_unchanged(tmp_path: Path) -> None:
    assert users(tmp_path, "add", "bob").exit_code == 0
    before = accounts(tmp_path).read_bytes()

    refused(users(tmp_path, "add", "BOB", "--admin"), 1, "user 'bob' already exists")

    assert accounts(tmp_path).read_bytes() == before


def test_passwd_replaces_the_password(tmp_path: Path) -> None:
    first = generated(users(tmp_path, "add", "carol"), "carol")

    result = users(tmp_path, "passwd", "carol")

    assert result.exit_code == 0, result.output
    second = generated(result, "carol")
    store = UserStore(accounts(tmp_path))
    assert store.verify("carol", second) is not None
    assert store.verify("carol", first) is None
    assert stat.S_IMODE(accounts(tmp_path).stat().st_mode) == 0o600


def test_remove_and_list(tmp_path: Path) -> None:
    users(tmp_path, "add", "dave")
    users(tmp_path, "add", "erin", "--admin")

    assert users(tmp_path, "remove", "dave").exit_code == 0

    listed = users(tmp_path, "list")
    assert "Accounts: 1" in listed.stdout and "erin" in listed.stdout
    assert "dave" not in listed.stdout


def test_missing_user_is_one_line_exit_1(tmp_path: Path) -> None:
    users(tmp_path, "add", "frank")
    before = accounts(tmp_path).read_bytes()

    refused(users(tmp_path, "remove", "nobody"), 1, "there is no user 'nobody'")
    refused(users(tmp_path, "passwd", "nobody"), 1, "there is no user 'nobody'")

    assert accounts(tmp_path).read_bytes() == before


def test_list_without_accounts(tmp_path: Path) -> None:
    result = users(tmp_path, "list")
    assert result.exit_code == 0 and "No accounts yet" in result.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("  ", "username: must not be empty"),
        ("a/b", "must not contain '/'"),
        ("x" * 256, "at most 255 characters, got 256"),
        ("two words", "must not contain spaces or control characters"),
    ],
)
def test_bad_names_are_refused(tmp_path: Path, name: str, message: str) -> None:
    refused(users(tmp_path, "add", name), 2, message)
    assert not accounts(tmp_path).exists()


def test_unusable_password_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    refused(users(tmp_path, "add", "gina", "--password-file", str(empty)), 1, "empty first line")
    missing = tmp_path / "nope"
    refused(users(tmp_path, "add", "gina", "--password-file", str(missing)), 1, "cannot read")
    assert not accounts(tmp_path).exists()


def test_broken_accounts_file_is_reported(tmp_path: Path) -> None:
    accounts(tmp_path).parent.mkdir(parents=True)
    accounts(tmp_path).write_text("{not json")

    refused(users(tmp_path, "list"), 1, "cannot read the accounts file")
    refused(users(tmp_path, "add", "hal"), 1, "cannot read the accounts file")
    assert accounts(tmp_path).read_text() == "{not json"


def test_changes_at_once_lose_nothing(tmp_path: Path) -> None:
    """Eight ``tkhub users add`` at the same time (each read-modify-write under the lock)."""
    import multiprocessing

    names = [f"user{i}" for i in range(8)]
    with multiprocessing.get_context("fork").Pool(len(names)) as pool:
        pool.starmap(UserStore(accounts(tmp_path)).add, [(n, "pw-123456") for n in names])

    assert sorted(UserStore(accounts(tmp_path)).load()) == names
