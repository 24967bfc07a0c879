"""Secret values of services in the local mode: one file per value, mode 0600.

The hub runs as root and reads the file when a server starts, so a rotated secret
reaches the next server without a restart; users never read the file itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from tkhub.settings import ServiceBase

MAX_SECRET_BYTES = 64 * 1024


class SecretFileError(Exception):
    """A secret file that cannot be used; ``str()`` says which and why."""


def secret_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot hold a secret (missing, not a file, readable by others), or None."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as e:
        return f"{path} cannot be read ({e.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file"
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        return f"{path} is readable by other users (mode {mode:04o}); chmod 600 it"
    if info.st_size > MAX_SECRET_BYTES:
        return f"{path} is larger than {MAX_SECRET_BYTES // 1024} KiB; is it the right file?"
    return None


def read_secret_file(path: Path) -> str:
    """The secret in ``path`` without its trailing newline; ``SecretFileError`` otherwise."""
    problem = secret_file_problem(path)
    if problem:
        raise SecretFileError(problem)
    try:
        value = path.read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise SecretFileError(f"{path} cannot be read ({e})") from None
    if not value:
        raise SecretFileError(f"{path} is empty")
    return value


def secret_values(service: ServiceBase, warn: Callable[[str], None]) -> dict[str, str]:
    """The service's secrets read from their files; one that cannot be read is left out
    and ``warn`` is told which (the file, never a value)."""
    env: dict[str, str] = {}
    for variable, path in service.secrets.items():
        try:
            env[variable] = read_secret_file(Path(path))
        except SecretFileError as e:
            warn(f"service {service.name}: {variable} not set: {e}")
    return env
