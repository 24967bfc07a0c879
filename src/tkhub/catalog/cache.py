"""In-memory snapshot of the catalog, so a spawn page never waits on the database.

The snapshot is rebuilt from the database right after each committed write
(``invalidate()`` bumps the generation and reloads); readers only take a reference
to the current immutable tuple. Writes from another process (a registry sync run
from the command line) are picked up by ``refresh_if_changed()``, which the app
calls in the background every few seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog import store
from tkhub.catalog.models import Image
from tkhub.catalog.schemas import ImagePublic

log = logging.getLogger(__name__)


class Snapshot(NamedTuple):
    """The entries, each with its JSON already encoded (readers only join bytes)."""

    images: tuple[ImagePublic, ...]
    encoded: tuple[bytes, ...]


def encode_list(parts: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"


class CatalogCache:
    """``images()`` for readers; ``invalidate()`` after every write and every sync."""

    def __init__(self, sessions: sessionmaker[Session], *, enabled: bool = True) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self.enabled = enabled
        self.generation = 0
        self._seen: tuple[int, object] | None = None

    def _load(self) -> Snapshot:
        with self._sessions() as session:
            images = tuple(store.list_images(session))
        return Snapshot(images, tuple(i.model_dump_json().encode() for i in images))

    def images(self) -> tuple[ImagePublic, ...]:
        return self.snapshot().images

    def snapshot(self) -> Snapshot:
        if not self.enabled:
            return self._load()
        snapshot = self._snapshot
        if snapshot is None:
            with self._lock:
                if self._snapshot is None:
                    self._snapshot = self._load()
                snapshot = self._snapshot
        return snapshot

    def _fingerprint(self) -> tuple[int, object]:
        with self._sessions() as session:
            count, newest = session.execute(
                select(func.count(Image.name), func.max(Image.updated_at))
            ).one()
        return int(count), newest

    def refresh_if_changed(self) -> bool:
        """Pick up writes made by another process (a sync run from the CLI)."""
        fingerprint = self._fingerprint()
        if fingerprint == self._seen:
            return False
        self.invalidate()
        return True

    def invalidate(self) -> None:
        """Drop the snapshot and load the new one now (the writer pays, not readers)."""
        with self._lock:
            self.generation += 1
            self._snapshot = None
            try:
                self._seen = self._fingerprint()
                self._snapshot = self._load()
            except Exception:  # the next reader retries; the write itself succeeded
                log.exception("catalog cache reload failed (generation %d)", self.generation)
