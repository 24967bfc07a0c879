"""Entry names for registry images: readable, valid slugs, stable across syncs.

``thinkube/pytorch:latest`` with prefix ``thinkube/`` -> ``pytorch``;
``:2.1`` -> ``pytorch-2.1``. A name that would be too long, or that two images of
one registry would share (``a/b`` and ``a-b``), gets a short hash of
``repository:tag`` so each image keeps its own name from one sync to the next.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from tkhub.catalog.schemas import is_slug

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
MAX_LEN = 63


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:6]


def base_name(repository: str, tag: str, prefix: str = "") -> str:
    repo = repository.removeprefix(prefix) if prefix else repository
    raw = repo if tag == "latest" else f"{repo}-{tag}"
    return _UNSAFE.sub("-", raw.lower()).strip("-._")


def with_hash(name: str, repository: str, tag: str, *salt: str) -> str:
    suffix = "-" + short_hash(repository, tag, *salt)
    return name[: MAX_LEN - len(suffix)].rstrip("-._") + suffix


def entry_names(keys: Iterable[tuple[str, str]], prefix: str = "") -> dict[tuple[str, str], str]:
    """One distinct slug per ``(repository, tag)``; the first in sorted order keeps
    the plain name, later ones sharing it get a hash."""
    names: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for repository, tag in sorted(set(keys)):
        name = base_name(repository, tag, prefix)
        if name in taken or len(name) > MAX_LEN or not is_slug(name):
            name = with_hash(name or "image", repository, tag)
        taken.add(name)
        names[(repository, tag)] = name
    return names
