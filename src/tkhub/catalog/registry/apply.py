"""Write a ``Discovery`` into the catalog through the store functions.

One registry is one transaction (the caller commits). Admin fields survive: the
store's ``upsert_registry_image`` only touches label-derived fields, and
``remove_registry_images`` only removes this registry's own entries, never
entries created through the API.

Images whose name is still free (a first sync: all of them) are inserted
together, rows built exactly as ``upsert_registry_image`` builds an added one,
with one flush instead of four statements each; everything else (updates,
conflicts, an image that asks to be the default) goes through the store.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tkhub.catalog import store
from tkhub.catalog.models import Image, utcnow
from tkhub.catalog.registry.discover import Discovery, Found, Key
from tkhub.catalog.registry.naming import with_hash
from tkhub.catalog.registry.report import Change, RegistryReport, Skip, now
from tkhub.catalog.schemas import Source

log = logging.getLogger(__name__)


def apply_discovery(
    session: Session, discovery: Discovery, *, known: dict[Key, str | None], report: RegistryReport
) -> RegistryReport:
    """Upsert what was found, remove what vanished, fill ``report``."""
    report.skipped.extend(
        Skip(repository=s.repository, tag=s.tag, reason=s.reason) for s in discovery.skipped
    )
    report.errors.extend(discovery.errors)
    fresh, rest = _fresh(session, discovery.found)
    _insert(session, discovery.registry, fresh, report)
    for found in rest:
        _upsert(session, discovery.registry, found, report)
    report.added.sort(key=lambda c: (c.repository, c.tag))
    if discovery.complete:
        keep = set(discovery.keep)
        if discovery.repository is not None:  # one repository: leave the others alone
            keep.update(k for k in known if k[0] != discovery.repository)
        if not _nothing_vanished(session, discovery.registry, known, keep):
            report.removed = store.remove_registry_images(
                session, registry=discovery.registry, keep=keep
            )
    report.ok = discovery.complete and not discovery.errors
    report.finished_at = now()
    return report


def _nothing_vanished(
    session: Session, registry: str, known: dict[Key, str | None], keep: set[Key]
) -> bool:
    """True when every row of this registry is kept: one count, no rows loaded."""
    if not known.keys() <= keep:
        return False
    rows = session.scalar(
        select(func.count())
        .select_from(Image)
        .where(Image.source == Source.registry.value, Image.registry_name == registry)
    )
    return rows == len(known)


def _fresh(session: Session, found: list[Found]) -> tuple[list[Found], list[Found]]:
    """(new images whose names are free, everything else)."""
    wanted = [f for f in found if f.entry is not None]
    if not wanted:
        return [], found
    taken = set(session.scalars(select(Image.name)))
    fresh: list[Found] = []
    rest: list[Found] = []
    for f in found:
        entry = f.entry
        if entry is not None and not entry.default and entry.name not in taken:
            fresh.append(f)
            taken.add(entry.name)
        else:
            rest.append(f)
    return fresh, rest


def _insert(session: Session, registry: str, fresh: list[Found], report: RegistryReport) -> None:
    """Add ``fresh`` images in one flush: the rows ``upsert_registry_image`` would add."""
    if not fresh:
        return
    stamp = utcnow()
    for found in fresh:
        entry = found.entry
        assert entry is not None
        data = entry.model_dump(mode="json")
        session.add(
            Image(
                name=entry.name,
                **{field: data[field] for field in store.SYNC_FIELDS},
                is_default=False,
                hidden=entry.hidden,
                allowed_groups=list(entry.allowed_groups),
                source=Source.registry.value,
                updated_at=stamp,
                registry_name=registry,
                repository=found.repository,
                tag=found.tag,
                digest=found.digest,
            )
        )
        report.added.append(_change(entry.name, found))
    session.flush()


def _change(name: str, found: Found) -> Change:
    return Change(
        name=name,
        repository=found.repository,
        tag=found.tag,
        digest=found.digest,
        platforms=found.platforms,
    )


def _upsert(session: Session, registry: str, found: Found, report: RegistryReport) -> None:
    if found.entry is None:
        report.unchanged.append(f"{found.repository}:{found.tag}")
        return
    entry = found.entry
    for attempt in range(2):
        try:
            outcome = store.upsert_registry_image(
                session,
                registry=registry,
                repository=found.repository,
                tag=found.tag,
                entry=entry,
                digest=found.digest,
            )
            break
        except store.ImageConflict as e:
            if attempt == 1:
                report.skipped.append(
                    Skip(repository=found.repository, tag=found.tag, reason=str(e))
                )
                return
            # The name belongs to another registry's image or to an API entry.
            name = with_hash(entry.name, found.repository, found.tag, registry)
            entry = entry.model_copy(update={"name": name})
    change = _change(entry.name, found)
    if outcome == "added":
        report.added.append(change)
    elif outcome == "updated":
        report.updated.append(change)
    else:
        report.unchanged.append(f"{found.repository}:{found.tag}")
