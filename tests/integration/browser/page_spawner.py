"""A spawner for the browser tests while the hub's LocalSpawner is not in the tree.

Plain JupyterHub ``SimpleLocalProcessSpawner`` with the spawn page wired the way the
mixin wires it: catalog over HTTP (``CatalogClient``), the real local inventory,
``options_form_html`` and ``checked_options``; the server opens in
``thinkube/notebooks`` of a per-user home under the test's data directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode, default

from tkhub.catalog.client import CatalogClient
from tkhub.gpu.inventory import local_inventory
from tkhub.spawners.form import checked_options, options_form_html
from tkhub.spawners.layout import NOTEBOOKS


class PageSpawner(SimpleLocalProcessSpawner):
    catalog_url = Unicode(config=True, help="catalog base URL")
    catalog_token = Unicode(config=True, help="token for the catalog")

    @default("options_form")
    def _options_form_default(self) -> Any:
        return options_form_html

    async def fetch_catalog(self) -> list[Any]:
        groups = {g.name for g in self.user.groups}
        async with CatalogClient(self.catalog_url, self.catalog_token) as client:
            entries = await client.list_images()
        return [e for e in entries if e.visible_to(groups, admin=self.user.admin)]

    async def fetch_inventory(self) -> Any:
        return local_inventory()

    async def options_from_form(self, formdata: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        return await checked_options(self, formdata, link=False)

    async def options_from_query(self, query: dict[str, Any]) -> dict[str, Any]:
        return await checked_options(self, query, link=True)

    async def start(self) -> Any:
        entries = {e.name: e for e in await self.fetch_catalog()}
        image = (self.user_options.get("image") or [""])[0]
        entry = entries.get(image) or next(e for e in entries.values() if e.default)
        notebooks = Path(self.home_dir) / NOTEBOOKS
        notebooks.mkdir(parents=True, exist_ok=True)
        self.cmd = [str(Path(entry.python).parent / "jupyterhub-singleuser")]
        self.notebook_dir = str(notebooks)
        self.args = ["--allow-root"] if os.geteuid() == 0 else []
        self.environment = {"TKHUB_IMAGE": entry.name}
        return await super().start()
