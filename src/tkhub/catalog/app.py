"""``create_app(settings)``: the catalog service as a FastAPI app.

Nothing happens at import time. The factory opens the database, brings its schema
to the newest migration, loads the cache snapshot and mounts the routers both at
``/`` and under ``JUPYTERHUB_SERVICE_PREFIX`` (``/services/catalog/``), so the API
answers directly on 127.0.0.1 and through the hub's proxy.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from jupyterhub.services.auth import HubAuth
from starlette.concurrency import run_in_threadpool

from tkhub.catalog import db
from tkhub.catalog.cache import CatalogCache
from tkhub.catalog.fastpath import ImageListShortcut
from tkhub.catalog.hub_tokens import make_hub_auth
from tkhub.catalog.registry import service as registry_service
from tkhub.catalog.routers import health, images, nodes
from tkhub.gpu.model import Inventory
from tkhub.settings import Settings

ROUTERS = (health.router, images.router, nodes.router)
REFRESH_SECONDS = 10.0
log = logging.getLogger(__name__)


async def _refresh_forever(cache: CatalogCache) -> None:
    while True:
        await asyncio.sleep(REFRESH_SECONDS)
        try:
            await run_in_threadpool(cache.refresh_if_changed)
        except Exception:  # a database hiccup must not end the refresher
            log.exception("catalog cache refresh failed")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_refresh_forever(app.state.cache))
    try:
        yield
    finally:
        task.cancel()


InventoryReader = Callable[[], Awaitable[Inventory]]


def create_app(
    settings: Settings,
    *,
    inventory: InventoryReader | None = None,
    hub_auth: HubAuth | None = None,
    service_prefix: str | None = None,
    cache_enabled: bool = True,
) -> FastAPI:
    """Hub API URL/token and the prefix default to the JUPYTERHUB_* variables.

    ``inventory`` serves ``GET /api/v1/nodes/gpu``; the mode that runs the catalog
    passes its own reader.
    """
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    if hub_auth is None:
        hub_auth = make_hub_auth(
            os.environ.get(
                "JUPYTERHUB_API_URL", f"http://127.0.0.1:{settings.hub_api_port}/hub/api"
            ),
            os.environ.get("JUPYTERHUB_API_TOKEN", ""),
        )
    prefix = (
        service_prefix
        if service_prefix is not None
        else os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "")
    )
    app = FastAPI(
        lifespan=_lifespan,
        title="tkhub image catalog",
        version="1",
        description="Jupyter environments offered at spawn time, and the GPU inventory.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.hub_auth = hub_auth
    app.state.inventory = inventory
    app.state.cache = CatalogCache(sessions, enabled=cache_enabled)
    app.state.cache.invalidate()
    prefix = prefix.rstrip("/")
    for router in ROUTERS:
        app.include_router(router)
        if prefix:
            app.include_router(router, prefix=prefix, include_in_schema=False)
    registry_service.install(app, settings, prefix=prefix)
    app.add_middleware(ImageListShortcut, prefix=prefix)
    return app
