"""Password sign-in for the local mode: accounts in a 0600 JSON file, scrypt hashes.

The file (``<data>/secrets/users.json``) holds ``{"users": {name: {"hash": ...,
"admin": bool}}}``. Writes go to a temporary file that replaces the old one, so
the hub never reads half a file; each change holds an ``flock`` on
``users.json.lock`` from read to write, so two ``tkhub users`` commands at once
cannot lose one another's change. There is no sign-up: ``tkhub users add`` creates
accounts, and the first ``tkhub up`` creates ``admin`` with a generated password.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Unicode

from tkhub.files import write_atomic

USERS_FILE = "users.json"
_N, _R, _P = 2**14, 8, 1  # scrypt cost: ~16 MiB, tens of milliseconds
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 88


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=2**26)
    return "$".join(
        ["scrypt", str(_N), str(_R), str(_P), base64.b64encode(salt).decode(),
         base64.b64encode(digest).decode()]
    )  # fmt: skip


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against ``hash_password``'s output."""
    try:
        algo, n, r, p, salt, digest = encoded.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            maxmem=2**26, dklen=len(expected),
        )  # fmt: skip
    except (ValueError, TypeError):
        return False
    return algo == "scrypt" and hmac.compare_digest(got, expected)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


class UserStore:
    """The accounts file. Names are stored as JupyterHub normalizes them (lowercase)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        users = json.loads(self.path.read_text()).get("users", {})
        return dict(users)

    def _save(self, users: dict[str, dict[str, Any]]) -> None:
        write_atomic(self.path, json.dumps({"users": users}, indent=2, sort_keys=True))

    @contextmanager
    def _changing(self) -> Iterator[dict[str, dict[str, Any]]]:
        """The accounts, under the file's lock; saved when the block ends without error."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.path.with_name(self.path.name + ".lock")
        with open(lock, "a") as held:
            lock.chmod(0o600)
            fcntl.flock(held, fcntl.LOCK_EX)
            users = self.load()
            yield users
            self._save(users)

    def add(self, name: str, password: str, *, admin: bool = False) -> None:
        name = normalize(name)
        with self._changing() as users:
            if name in users:
                raise KeyError(f"user {name!r} already exists")
            users[name] = {"hash": hash_password(password), "admin": admin}

    def set_password(self, name: str, password: str) -> None:
        name = normalize(name)
        with self._changing() as users:
            if name not in users:
                raise KeyError(f"there is no user {name!r}")
            users[name]["hash"] = hash_password(password)

    def remove(self, name: str) -> None:
        name = normalize(name)
        with self._changing() as users:
            if users.pop(name, None) is None:
                raise KeyError(f"there is no user {name!r}")

    def verify(self, name: str, password: str) -> dict[str, Any] | None:
        """The account if ``password`` is right; same work whether or not it exists."""
        account = self.load().get(normalize(name))
        ok = verify_password(password, account["hash"] if account else _DUMMY)
        return account if ok and account else None


def normalize(name: str) -> str:
    name = name.strip().lower()
    if not name:
        raise ValueError("username: must not be empty")
    return name


def users_file(settings: Any) -> Path:
    return Path(settings.secrets_dir) / USERS_FILE


class PasswordAuthenticator(Authenticator):
    """Sign in with a name and password from ``users_file``; no open sign-up."""

    users_file = Unicode(
        help="""JSON file of accounts and scrypt password hashes (mode 0600).

        Managed by ``tkhub users add|remove|passwd``::

            c.PasswordAuthenticator.users_file = "/srv/tkhub/secrets/users.json"

        Its accounts are the allow list: nobody else can sign in.
        """
    ).tag(config=True, allow_config=True)

    def _store(self) -> UserStore:
        return UserStore(Path(self.users_file))

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        name, password = data.get("username", ""), data.get("password", "")
        if not name or not password:
            return None
        # scrypt takes tens of milliseconds and releases the GIL: in a thread, the
        # hub's event loop keeps serving everyone else while sign-ins arrive.
        account = await asyncio.to_thread(self._store().verify, name, password)
        if account is None:
            self.log.warning("failed sign-in for %r", name)
            return None
        return {"name": normalize(name), "admin": bool(account.get("admin"))}

    def check_allowed(self, username: str, authentication: Any = None) -> bool:
        # Only accounts in the file exist; users created through the hub API
        # (or by an admin on the admin page) are allowed by the hub's own roles.
        return username in self._store().load() or super().check_allowed(username, authentication)
