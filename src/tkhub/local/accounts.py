"""Per-user system accounts, created on first spawn when the hub runs as root.

As TLJH does: ``useradd --system --no-create-home`` with a name derived from the
hub username (``system_account_name``) and the home in the data directory. Every
account joins one shared group so ``shared/datasets`` and ``shared/models`` are
writable by all users and nobody else.

An account records the install that made it in its comment (GECOS) field,
``tkhub <data dir>`` (``install_marker``). tkhub uses, and a test removes, only
accounts that carry its own marker: one made by hand or by another install on the
same machine is refused, never adopted or changed.
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
from tkhub.settings import ACCOUNT_PREFIX_PATTERN

SHARED_GROUP = "tkhub-users"
DEFAULT_PREFIX = "tk-"
MAX_ACCOUNT_NAME = 32  # useradd's limit
ACCOUNT_PREFIX = re.compile(ACCOUNT_PREFIX_PATTERN)


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


class AccountNotOurs(AccountError):
    """The account exists but another install, or a person, made it."""


MARKER_PREFIX = "tkhub "


def install_marker(data_dir: Path) -> str:
    """The comment field of the accounts this install makes: ``tkhub <data dir>``."""
    # ':' separates passwd fields; a data dir is a path, so nothing else needs escaping.
    return MARKER_PREFIX + os.path.realpath(data_dir).replace(":", "%3A")


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


def ensure_account(name: str, home: Path, marker: str, group: str = SHARED_GROUP) -> Account:
    """The account ``name`` with home ``home``, made by the install ``marker`` names.

    Created if missing, with the uid and gid that own ``home`` when it already
    exists (an account deleted by hand comes back owning its files). An existing
    account without ``marker`` is refused (``AccountNotOurs``).
    """
    with _ACCOUNTS_LOCK:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            _create_account(name, home, marker, group)
            entry = pwd.getpwnam(name)
        else:
            entry = _check_owner(entry, home, marker)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def _check_owner(entry: pwd.struct_passwd, home: Path, marker: str) -> pwd.struct_passwd:
    if entry.pw_gecos == marker:
        return entry
    if not entry.pw_gecos and entry.pw_dir == str(home):
        # Made by a tkhub release before accounts carried a marker: the home
        # inside this data directory says whose it is.
        _run(["usermod", "--comment", marker, entry.pw_name])
        return pwd.getpwnam(entry.pw_name)
    name, comment = entry.pw_name, entry.pw_gecos
    if comment.startswith(MARKER_PREFIX):
        whose = f"the tkhub install at {comment.removeprefix(MARKER_PREFIX)} made it"
    else:
        whose = f"its comment is {comment or 'empty'!r}, its home {entry.pw_dir}"
    raise AccountNotOurs(
        f"the system account {name} exists but this tkhub install did not create it "
        f"({whose}); tkhub does not take over accounts. Either give this install a "
        "prefix of its own (account_prefix: lab- in its tkhub.yaml, or "
        f"TKHUB_ACCOUNT_PREFIX) and restart it, or, if {name} is a leftover nobody "
        f"uses, remove it (userdel {name}) and start again"
    )


def _create_account(name: str, home: Path, marker: str, group: str) -> None:
    ensure_group(group)
    ids = _ids_of_existing_home(name, home)
    if _group_exists(name):
        # A group of that name left behind by a removed account: join it.
        own_group = ["--gid", name]
    elif ids is not None and not _gid_taken(ids[1]):
        _run(["groupadd", "--system", "--gid", str(ids[1]), name])
        own_group = ["--gid", name]
    else:
        own_group = ["--user-group"]
    same_uid = ["--uid", str(ids[0])] if ids is not None else []
    _run(
        [
            "useradd", "--system", "--no-create-home", *own_group, *same_uid,
            "--comment", marker, "--home-dir", str(home), "--shell", "/bin/bash",
            "--groups", group, name,
        ]
    )  # fmt: skip


def _ids_of_existing_home(name: str, home: Path) -> tuple[int, int] | None:
    """The (uid, gid) owning ``home`` if it exists and its uid is free; None if no home."""
    try:
        st = home.stat()
    except FileNotFoundError:
        return None
    if st.st_uid == 0:
        return None  # made by the hub before the account existed: nobody to restore
    try:
        holder = pwd.getpwuid(st.st_uid)
    except KeyError:
        return st.st_uid, st.st_gid
    raise AccountError(
        f"cannot create the system account {name}: its home {home} belongs to uid "
        f"{st.st_uid}, which is now the account {holder.pw_name}"
    )


def _gid_taken(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
    except KeyError:
        return False
    return True


def remove_account(name: str, marker: str) -> None:
    """Delete the account (not its home) if this install made it; a missing one is fine."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return
    if entry.pw_gecos != marker:
        raise AccountNotOurs(
            f"not removing {name}: its comment {entry.pw_gecos!r} is not {marker!r}"
        )
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
