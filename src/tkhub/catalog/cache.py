"""In-memory snapshot of the catalog, so a spawn page never waits on the database.

The snapshot is rebuilt from the database right after each committed write
(``invalidate()`` bumps the generation and reloads); readers only take a reference
to the current immutable tuple. Writes from another process (a registry sync run
from the command line) are picked up by ``refresh_if_changed()``, which the app
calls in the background every few seconds.

``listing()`` answers ``GET /api/v1/images/jupyter``: the JSON body for one
combination of filters and caller visibility, with its ``ETag`` (a hash of the
body), computed once per snapshot and kept on it, so a repeated read is a dict
lookup. A new snapshot starts with no listings, so a write changes them at once.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog import store
from tkhub.catalog.models import Image
from tkhub.catalog.schemas import GpuNeed, ImagePublic

log = logging.getLogger(__name__)
MAX_LISTINGS = 1024  # distinct (filters, visibility) answers kept per snapshot


class ListingKey(NamedTuple):
    """What decides the body of one ``GET /api/v1/images/jupyter`` answer."""

    include_hidden: bool
    admin: bool
    groups: frozenset[str]  # only the caller's groups some entry is restricted to
    gpu: GpuNeed | None
    group: str | None


@dataclass(eq=False)
class Listing:
    """One answer: the JSON body, its strong ETag and (made on first use) its gzip."""

    body: bytes
    etag: str
    _gzipped: bytes | None = field(default=None, repr=False)

    @classmethod
    def of(cls, body: bytes) -> Listing:
        return cls(body, '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"')

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped

    def matches(self, if_none_match: str | None) -> bool:
        """``If-None-Match`` (weak comparison, a list or ``*``) names this body."""
        if not if_none_match:
            return False
        for tag in if_none_match.split(","):
            tag = tag.strip()
            if tag == "*" or tag.removeprefix("W/") == self.etag:
                return True
        return False


class Snapshot(NamedTuple):
    """The entries, each with its JSON already encoded (readers only join bytes).

    ``listings`` memoizes whole answers for this snapshot only; ``restricted`` is
    every group some entry is limited to (the only groups that change an answer).
    """

    images: tuple[ImagePublic, ...]
    encoded: tuple[bytes, ...]
    listings: dict[ListingKey, Listing]
    restricted: frozenset[str]

    @classmethod
    def of(cls, images: tuple[ImagePublic, ...]) -> Snapshot:
        encoded = tuple(i.model_dump_json().encode() for i in images)
        restricted = frozenset(g for i in images for g in i.allowed_groups)
        return cls(images, encoded, {}, restricted)

    def key(
        self,
        *,
        groups: frozenset[str],
        admin: bool,
        gpu: GpuNeed | None = None,
        group: str | None = None,
        include_hidden: bool = False,
    ) -> ListingKey:
        if include_hidden:  # visibility is not looked at
            return ListingKey(True, False, frozenset(), gpu, group)
        return ListingKey(False, admin, groups & self.restricted, gpu, group)

    def listing(self, key: ListingKey) -> Listing:
        """The answer for ``key``, computed once per snapshot."""
        found = self.listings.get(key)
        if found is None:
            chosen = (
                encoded
                for entry, encoded in zip(self.images, self.encoded, strict=True)
                if (key.include_hidden or entry.visible_to(key.groups, admin=key.admin))
                and (key.gpu is None or entry.gpu is key.gpu)
                and (
                    key.group is None
                    or not entry.allowed_groups
                    or key.group in entry.allowed_groups
                )
            )
            found = Listing.of(encode_list(chosen))
            if len(self.listings) >= MAX_LISTINGS:
                self.listings.clear()
            self.listings[key] = found
        return found


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
        return Snapshot.of(images)

    def images(self) -> tuple[ImagePublic, ...]:
        return self.snapshot().images

    def listing_for(
        self,
        *,
        groups: frozenset[str],
        admin: bool,
        gpu: GpuNeed | None,
        group: str | None,
        include_hidden: bool,
    ) -> Listing:
        """The encoded list answer for one caller and filters, from the current snapshot."""
        snapshot = self.snapshot()
        return snapshot.listing(
            snapshot.key(
                groups=groups, admin=admin, gpu=gpu, group=group, include_hidden=include_hidden
            )
        )

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
