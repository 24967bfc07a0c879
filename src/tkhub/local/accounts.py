"""Per-user system accounts, created on first spawn when the hub runs as root.

As TLJH does: ``useradd --system --no-create-home`` with a name derived from the
hub username (``system_account_name``) and the home in the
data directory. Every account joins one shared group so ``shared/datasets`` and
``shared/models`` are writable by all users and nobody else.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tkhub.layout import escape_username, name_digest

SHARED_GROUP = "tkhub-users"
DEFAULT_PREFIX = "tk-"
MAX_ACCOUNT_NAME = 32  # useradd's limit


def system_account_name(name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """A Linux account name (``<prefix><escaped>``, at most 32 characters) for a hub user."""
    escaped = escape_username(name)
    room = MAX_ACCOUNT_NAME - len(prefix)
    if len(escaped) <= room and escaped[0].isalnum():
        return f"{prefix}{escaped}"
    stem = re.sub(r"[^a-z0-9]+", "-", escaped[:40]).strip("-")[: max(room - 10, 0)]
    return f"{prefix}{stem}-{name_digest(name)}" if stem else f"{prefix}{name_digest(name)}"


class AccountError(RuntimeError):
    """A system account could not be created; ``str()`` says why."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: Path

    @property
    def groups(self) -> list[int]:
        return os.getgrouplist(self.name, self.gid)


def running_as_root() -> bool:
    return os.geteuid() == 0


# First spawns of two users at once run useradd in two threads of the hub; the
# shadow tools refuse to run concurrently ("cannot lock /etc/passwd").
_ACCOUNTS_LOCK = threading.Lock()


def _run(cmd: list[str], attempts: int = 5) -> None:
    for attempt in range(attempts):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
        if "cannot lock" not in done.stderr or attempt == attempts - 1:
            break
        time.sleep(0.2 * (attempt + 1))  # another process holds the lock
    raise AccountError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def ensure_group(name: str = SHARED_GROUP) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        _run(["groupadd", "--system", name])
        return grp.getgrnam(name).gr_gid


def ensure_account(name: str, home: Path, group: str = SHARED_GROUP) -> Account:
    """The account ``name`` with home ``home``; created if missing (idempotent)."""
    with _ACCOUNTS_LOCK:
        return _ensure_account(name, home, group)


def _ensure_account(name: str, home: Path, group: str) -> Account:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        ensure_group(group)
        # A group of that name left behind by a removed account would make
        # --user-group fail: join it instead.
        own_group = ["--gid", name] if _group_exists(name) else ["--user-group"]
        _run(
            [
                "useradd", "--system", "--no-create-home", *own_group,
                "--home-dir", str(home), "--shell", "/bin/bash", "--groups", group, name,
            ]
        )  # fmt: skip
        entry = pwd.getpwnam(name)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def remove_account(name: str) -> None:
    """Delete the account (not its home); a missing account is not an error."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    _run(["userdel", name])


def _allows(st: os.stat_result, uid: int, gids: set[int], bit: int) -> bool:
    """Whether ``uid``/``gids`` hold permission ``bit`` (the "other" bit: 1 x, 4 r)."""
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid in gids:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def unreachable_part(path: Path, uid: int, gids: list[int] | set[int]) -> Path | None:
    """The first directory or file on the way to executing ``path`` that ``uid`` cannot pass.

    Checks the search bit of every directory on the path (symlinks followed) and
    the execute bit of the file itself; None when the account can run it.
    """
    groups = set(gids)
    target = Path(os.path.realpath(path))
    for parent in reversed(target.parents):
        if not _allows(os.stat(parent), uid, groups, stat.S_IXOTH):
            return parent
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    return None if _allows(st, uid, groups, stat.S_IXOTH) else target
