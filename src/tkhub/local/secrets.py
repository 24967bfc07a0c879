"""The local mode's generated secrets, each in its own 0600 file under ``<data>/secrets``.

Created on first use and then reused, so a restarted hub keeps its cookies valid and
the catalog and the CLI keep their tokens. Nothing here is ever printed or logged.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from tkhub.files import write_atomic

PROXY_TOKEN = "proxy-auth-token"
CATALOG_TOKEN = "catalog-service-token"  # the catalog service's hub token (reads, HubAuth)
CLI_TOKEN = "cli-token"  # the ``tkhub`` command's token: catalog admin, users, servers


def secret_file(settings: Any, name: str) -> Path:
    return Path(settings.secrets_dir) / name


def ensure_secret(settings: Any, name: str, nbytes: int = 32) -> str:
    """The secret in ``<data>/secrets/<name>``; a new random hex one if the file is missing."""
    path = secret_file(settings, name)
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_hex(nbytes)
    write_atomic(path, value + "\n")
    return value


def read_secret(settings: Any, name: str) -> str | None:
    """The secret if it exists and this user may read it; None otherwise."""
    try:
        return secret_file(settings, name).read_text().strip() or None
    except OSError:
        return None
