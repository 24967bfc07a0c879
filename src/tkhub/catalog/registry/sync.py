"""``sync_registries``: discover every configured registry and write the catalog.

The core as a plain async function; the CLI, the periodic task and the API
routes are thin wrappers around it. Registries are synced concurrently, each in
its own transaction, so one registry that is down changes nothing of the others
and its last good entries keep being served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog import store
from tkhub.catalog.registry.apply import apply_discovery
from tkhub.catalog.registry.bearer import CredentialsError
from tkhub.catalog.registry.client import DEFAULT_CONCURRENCY, RegistryClient
from tkhub.catalog.registry.discover import Discovery, discover
from tkhub.catalog.registry.report import RegistryReport, SyncReport, now, record
from tkhub.settings import RegistrySettings, Settings

log = logging.getLogger(__name__)


class UnknownRegistry(ValueError):
    """A registry name that is not in the settings."""


def select_registries(settings: Settings, name: str | None) -> list[RegistrySettings]:
    if name is None:
        return list(settings.registries)
    chosen = [r for r in settings.registries if r.name == name]
    if not chosen:
        configured = ", ".join(r.name for r in settings.registries) or "none"
        raise UnknownRegistry(f"registry: no registry named {name!r} (configured: {configured})")
    return chosen


async def sync_registries(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    registries: Iterable[RegistrySettings] | None = None,
    repository: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> SyncReport:
    """Sync ``registries`` (default: all configured); ``repository``: just that one."""
    chosen = list(settings.registries if registries is None else registries)
    runs = await asyncio.gather(
        *(sync_one(r, sessions, repository=repository, concurrency=concurrency) for r in chosen)
    )
    report = SyncReport(registries=list(runs))
    record(settings.state_dir, report)
    return report


async def sync_one(
    registry: RegistrySettings,
    sessions: sessionmaker[Session],
    *,
    repository: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> RegistryReport:
    report = RegistryReport(registry=registry.name, repository=repository, started_at=now())
    known = await asyncio.to_thread(_known, sessions, registry.name)
    try:
        async with RegistryClient(registry, concurrency=concurrency) as client:
            discovery = await discover(client, known, repository=repository)
    except CredentialsError as e:
        discovery = Discovery(registry.name, repository=repository, complete=False, errors=[str(e)])
    try:
        await asyncio.to_thread(_apply, sessions, discovery, known, report)
    except Exception as e:  # the database, not the registry: report it, keep the old entries
        log.exception("registry %s: writing the catalog failed", registry.name)
        report.ok = False
        report.added, report.updated, report.removed = [], [], []  # rolled back
        report.errors.append(f"writing the catalog failed: {type(e).__name__}")
        report.finished_at = now()
    _log_summary(report)
    return report


def _known(sessions: sessionmaker[Session], registry: str) -> dict[tuple[str, str], str | None]:
    with sessions() as session:
        return store.registry_digests(session, registry=registry)


def _apply(
    sessions: sessionmaker[Session],
    discovery: Discovery,
    known: dict[tuple[str, str], str | None],
    report: RegistryReport,
) -> None:
    with sessions() as session:
        apply_discovery(session, discovery, known=known, report=report)
        session.commit()


def _log_summary(report: RegistryReport) -> None:
    log.info(
        "registry %s synced: %d added, %d updated, %d unchanged, %d removed, %d skipped%s",
        report.registry,
        len(report.added),
        len(report.updated),
        len(report.unchanged),
        len(report.removed),
        len(report.skipped),
        f"; errors: {'; '.join(report.errors)}" if report.errors else "",
    )
