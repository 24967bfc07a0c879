"""``python -m tkhub.catalog``: the catalog service on 127.0.0.1:TKHUB_CATALOG_PORT.

Without a GPU inventory; the modes run it with theirs: ``python -m
tkhub.local.catalog_service`` (NVML and the ledger) and ``python -m
tkhub.kube.catalog_service`` (nodes and pods).

JupyterHub starts it as the managed service ``catalog`` and passes
``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_API_URL`` and ``JUPYTERHUB_SERVICE_PREFIX``.
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from fastapi import FastAPI

from tkhub.catalog import store
from tkhub.catalog.app import InventoryReader, create_app
from tkhub.catalog.schemas import ImageCreate, Kind, Source
from tkhub.settings import load_settings

log = logging.getLogger("tkhub.catalog")
GRACEFUL_STOP_SECONDS = 2


def seed_this_python(app: FastAPI) -> None:
    """A fresh catalog offers the service's own environment (the hub's), as default."""
    entry = ImageCreate(
        name="python",
        display_name="Python (this machine)",
        description="The Python environment tkhub itself runs in.",
        kind=Kind.local,
        python=sys.executable,
        default=True,
    )
    with app.state.sessions() as session:
        added = store.seed_if_empty(session, entry=entry, source=Source.local)
        session.commit()
    if added:
        log.info("empty catalog: added %s (%s) as the default", entry.name, entry.python)
        app.state.cache.invalidate()


def main(inventory: InventoryReader | None = None) -> None:
    """Serve the catalog; each mode's entry point passes its GPU inventory reader."""
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="[%(levelname)s %(name)s] %(message)s")
    app = create_app(settings, inventory=inventory)
    seed_this_python(app)
    uvicorn.run(
        app,
        host=settings.catalog_host,
        port=settings.catalog_port,
        log_level="warning",
        # JupyterHub stops its services one after another, each with SIGINT; an
        # open keep-alive connection must not hold the hub's stop.
        timeout_graceful_shutdown=GRACEFUL_STOP_SECONDS,
    )


if __name__ == "__main__":
    main()
