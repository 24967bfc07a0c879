"""``python -m tkhub.local.jobs_service``: the jobs service on this machine.

The hub starts it as its managed service ``jobs`` (as root, like the spawner, so a
job runs as its user's account) and gives it its token and OAuth client in the
``JUPYTERHUB_*`` variables. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import os

import uvicorn
from jupyterhub.services.auth import HubOAuth

from tkhub.jobs import JOBS_PREFIX, db
from tkhub.jobs.app import create_app
from tkhub.jobs.service import JobsService, catalog_reader
from tkhub.local.jobs_runner import LocalRunner
from tkhub.local.secrets import CATALOG_TOKEN, ensure_secret
from tkhub.settings import Settings, load_settings

DEFAULT_PREFIX = f"{JOBS_PREFIX}/"


def build(settings: Settings) -> tuple[JobsService, HubOAuth, str]:
    engine = db.make_engine(settings.jobs_database_url)
    db.upgrade(engine)
    # the catalog's token: it reads every entry, as the spawners do
    catalog = catalog_reader(
        settings.catalog_url, ensure_secret(settings, CATALOG_TOKEN), settings.catalog_timeout
    )
    service = JobsService(db.session_factory(engine), LocalRunner(settings), catalog)
    hub_auth = HubOAuth(
        api_url=os.environ.get(
            "JUPYTERHUB_API_URL", f"http://127.0.0.1:{settings.hub_api_port}/hub/api"
        ),
        api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
        cache_max_age=60,
    )
    return service, hub_auth, os.environ.get("JUPYTERHUB_SERVICE_PREFIX", DEFAULT_PREFIX)


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="[jobs %(levelname)s] %(message)s")
    service, hub_auth, prefix = build(settings)
    app = create_app(service, hub_auth, prefix)
    uvicorn.run(app, host="127.0.0.1", port=settings.jobs_port, log_level="warning")


if __name__ == "__main__":
    main()
