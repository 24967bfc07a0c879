"""``python -m tkhub.catalog``: the catalog service on 127.0.0.1:TKHUB_CATALOG_PORT.

JupyterHub starts it as the managed service ``catalog`` and passes
``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_API_URL`` and ``JUPYTERHUB_SERVICE_PREFIX``.
"""

from __future__ import annotations

import logging

import uvicorn

from tkhub.catalog.app import create_app
from tkhub.config import load_settings


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="[%(levelname)s %(name)s] %(message)s")
    app = create_app(settings)
    uvicorn.run(app, host="127.0.0.1", port=settings.catalog_port, log_level="warning")


if __name__ == "__main__":
    main()
