"""Write a ``Discovery`` into the catalog through the store functions.

One registry is one transaction (the caller commits). Admin fields survive: the
store's ``upsert_registry_image`` only touches label-derived fields, and
``remove_registry_images`` only removes this registry's own entries, never
entries created through the API.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from tkhub.catalog import store
from tkhub.catalog.registry.discover import Discovery, Found, Key
from tkhub.catalog.registry.naming import with_hash
from tkhub.catalog.registry.report import Change, RegistryReport, Skip, now

log = logging.getLogger(__name__)


def apply_discovery(
    session: Session, discovery: Discovery, *, known: dict[Key, str | None], report: RegistryReport
) -> RegistryReport:
    """Upsert what was found, remove what vanished, fill ``report``."""
    report.skipped.extend(
        Skip(repository=s.repository, tag=s.tag, reason=s.reason) for s in discovery.skipped
    )
    report.errors.extend(discovery.errors)
    for found in discovery.found:
        _upsert(session, discovery.registry, found, report)
    if discovery.complete:
        keep = set(discovery.keep)
        if discovery.repository is not None:  # one repository: leave the others alone
            keep.update(k for k in known if k[0] != discovery.repository)
        report.removed = store.remove_registry_images(
            session, registry=discovery.registry, keep=keep
        )
    report.ok = discovery.complete and not discovery.errors
    report.finished_at = now()
    return report


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
    change = Change(
        name=entry.name,
        repository=found.repository,
        tag=found.tag,
        digest=found.digest,
        platforms=found.platforms,
    )
    if outcome == "added":
        report.added.append(change)
    elif outcome == "updated":
        report.updated.append(change)
    else:
        report.unchanged.append(f"{found.repository}:{found.tag}")
