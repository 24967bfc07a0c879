"""``install(app, settings)``: registry sync inside the catalog service.

Adds ``POST /api/v1/sync`` (admins), ``GET /api/v1/sync/status`` (any hub
token), ``POST /api/v1/webhooks/harbor`` (the shared secret) and a periodic sync
every ``settings.catalog_sync_interval`` seconds (0: off) started with the app.
Syncs never overlap (one lock); each one invalidates the catalog cache.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Header, HTTPException, Query, Request

from tkhub.catalog.deps import Admin, Reader
from tkhub.catalog.registry.report import RegistryStatus, SyncReport, SyncStatus, read_status
from tkhub.catalog.registry.sync import UnknownRegistry, select_registries, sync_registries
from tkhub.catalog.registry.webhook import WebhookError, harbor_targets
from tkhub.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(tags=["registry sync"])


class SyncRunner:
    """Runs one sync at a time and refreshes the catalog cache after it."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self.lock.locked()

    async def run(self, registry: str | None = None, repository: str | None = None) -> SyncReport:
        chosen = select_registries(self.settings, registry)
        async with self.lock:
            report = await sync_registries(
                self.settings, self.app.state.sessions, registries=chosen, repository=repository
            )
        self.app.state.cache.invalidate()
        return report

    async def forever(self, interval: float) -> None:
        while True:
            try:
                await self.run()
            except Exception:  # one failed round must not end the periodic sync
                log.exception("periodic registry sync failed")
            await asyncio.sleep(interval)


def _runner(request: Request) -> SyncRunner:
    runner: SyncRunner = request.app.state.registry_sync
    return runner


@router.post("/api/v1/sync", response_model=SyncReport)
async def sync_now(
    request: Request,
    caller: Admin,
    registry: Annotated[str | None, Query(description="only this registry")] = None,
    repository: Annotated[
        str | None, Query(max_length=255, description="only this repository")
    ] = None,
) -> SyncReport:
    try:
        return await _runner(request).run(registry, repository)
    except UnknownRegistry as e:
        raise HTTPException(400, str(e)) from e


@router.get("/api/v1/sync/status", response_model=SyncStatus)
async def sync_status(request: Request, caller: Reader) -> SyncStatus:
    runner = _runner(request)
    recorded = read_status(runner.settings.state_dir)
    return SyncStatus(
        interval_seconds=runner.settings.catalog_sync_interval,
        running=runner.running,
        registries=[
            recorded.get(r.name) or RegistryStatus(registry=r.name)
            for r in runner.settings.registries
        ],
    )


def _check_secret(settings: Settings, given: str | None) -> None:
    path = settings.harbor_webhook_secret_file
    if path is None:
        raise HTTPException(403, "webhook: off (set harbor_webhook_secret_file to turn it on)")
    try:
        secret = path.read_text().strip()
    except OSError as e:
        log.error("cannot read harbor_webhook_secret_file %s: %s", path, e.strerror)
        raise HTTPException(503, "webhook: the service cannot read its secret") from e
    if not secret or not hmac.compare_digest((given or "").encode(), secret.encode()):
        raise HTTPException(403, "webhook: missing or wrong secret")


@router.post("/api/v1/webhooks/harbor", response_model=SyncReport)
async def harbor_webhook(
    request: Request,
    payload: Annotated[dict[str, Any], Body()],
    x_harbor_secret: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> SyncReport:
    """Harbor sends its "Auth Header" as ``Authorization``; either header works."""
    runner = _runner(request)
    _check_secret(runner.settings, x_harbor_secret or authorization)
    try:
        targets = harbor_targets(runner.settings.registries, payload)
    except WebhookError as e:
        raise HTTPException(400, str(e)) from e
    report = SyncReport()
    for registry, repository in targets:
        run = await runner.run(registry, repository)
        report.registries.extend(run.registries)
    return report


def _with_periodic_sync(
    inner: Callable[[FastAPI], AbstractAsyncContextManager[Any]], runner: SyncRunner
) -> Callable[[FastAPI], AbstractAsyncContextManager[Any]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            interval = runner.settings.catalog_sync_interval
            task = None
            if interval > 0 and runner.settings.registries:
                task = asyncio.create_task(runner.forever(interval))
            try:
                yield state
            finally:
                if task is not None:
                    task.cancel()

    return lifespan


def install(app: FastAPI, settings: Settings, *, prefix: str = "") -> None:
    """Add the sync routes (at ``/`` and under ``prefix``) and the periodic sync."""
    runner = SyncRunner(app, settings)
    app.state.registry_sync = runner
    app.include_router(router)
    if prefix:
        app.include_router(router, prefix=prefix, include_in_schema=False)
    app.router.lifespan_context = _with_periodic_sync(app.router.lifespan_context, runner)
