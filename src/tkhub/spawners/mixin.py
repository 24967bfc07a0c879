"""What both tkhub spawners share: the catalog, the spawn page and the selection.

``TkSpawnerMixin`` goes before the JupyterHub spawner class it extends::

    class LocalSpawner(TkSpawnerMixin, LocalProcessSpawner): ...
    class TkKubeSpawner(TkSpawnerMixin, KubeSpawner): ...

At spawn time it asks the catalog for the environments the user may see, offers them
with the live GPU inventory on the spawn page, validates a form, a launch link or a
REST ``user_options`` body the same way, and hands the result to
``apply_selection(selection)``, which each spawner implements, just before the
spawner's own ``start()``. A catalog that does not answer within ``catalog_timeout``
ends the spawn (and the page) at once with a message: there is no fallback list.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable

from tkhub.catalog.client import CatalogClient
from tkhub.catalog.schemas import ImagePublic
from tkhub.errors import SpawnRefused
from tkhub.gpu.model import Inventory
from tkhub.selection import Selection
from tkhub.spawners.form import (
    SIZES,
    BadSelection,
    check_params,
    checked_options,
    normalize_params,
    options_form_html,
    scaled_resources,
    user_access,
)


class TkSpawnerMixin(LoggingConfigurable):
    """Catalog-backed environments and GPU placement for a JupyterHub spawner."""

    # Provided by the JupyterHub Spawner this mixin is combined with.
    user: Any
    user_options: dict[str, Any]
    _log_name: str

    catalog_url = Unicode(
        config=True,
        help="""
        Base URL of the tkhub image catalog service (without ``/api/v1``).

            c.LocalSpawner.catalog_url = "http://127.0.0.1:8011"
        """,
    )

    catalog_token = Unicode(
        config=True,
        help="""
        A JupyterHub API token the spawner presents to the catalog (any valid hub
        token may read it; the catalog service's own token is the usual choice).
        """,
    )

    catalog_timeout = Float(
        5.0,
        config=True,
        help="""
        Seconds to wait for the catalog. When it does not answer in time, the spawn
        page and the spawn fail at once with a message that says so.
        """,
    )

    @default("options_form")
    def _options_form_default(self) -> Any:
        return options_form_html

    # --- data the page and the spawn are built from ------------------------------

    async def fetch_catalog(self) -> list[ImagePublic]:
        """The environments this user may start now; ``CatalogUnavailable`` if unreachable."""
        groups, admin = user_access(self.user)
        async with CatalogClient(
            self.catalog_url, self.catalog_token, timeout=self.catalog_timeout
        ) as client:
            entries = await client.list_images()
        return [e for e in entries if not e.hidden and e.visible_to(groups, admin=admin)]

    async def fetch_inventory(self) -> Inventory:
        """GPUs and what is free; each spawner reads its own (NVML or the cluster)."""
        raise NotImplementedError

    async def inventory_for_start(self) -> Inventory:
        """The inventory a start is checked against (by default, what the page showed).

        A spawner whose ``apply_selection`` books GPUs atomically overrides this to
        leave availability to that booking, which says exactly what was taken.
        """
        return await self.fetch_inventory()

    async def apply_selection(self, selection: Selection) -> None:
        """Set this spawner up (command or image, resources, GPUs) for ``selection``."""
        raise NotImplementedError

    # --- the spawn page: form and launch links -------------------------------------

    async def options_from_form(self, formdata: dict[str, Any]) -> dict[str, Any]:
        return await checked_options(self, formdata, link=False)

    async def options_from_query(self, query: dict[str, Any]) -> dict[str, Any]:
        return await checked_options(self, query, link=True)

    # --- start ------------------------------------------------------------------------

    async def resolve_selection(self) -> Selection:
        """``user_options`` checked against the catalog and inventory as they are now.

        The page was rendered a while ago: an environment may have been hidden or a
        GPU taken since. REST API bodies (``{"image": "x"}`` or ``{"image": ["x"]}``)
        take the same path as forms and links.
        """
        params = normalize_params(self.user_options or {})
        entries = await self.fetch_catalog()
        inventory = await self.inventory_for_start()
        groups, admin = user_access(self.user)
        try:
            selection = check_params(
                params, entries=entries, inventory=inventory, user_groups=groups, admin=admin
            )
        except BadSelection as e:
            raise SpawnRefused(
                f"Cannot start: {e.field}: {e.reason_text}. Choose again on the spawn page."
            ) from e
        size = (params.get("size") or ["full"])[0] or "full"
        if size != "full" and size in SIZES and selection.image.resources is not None:
            resized = scaled_resources(selection.image.resources, size)
            selection = replace(
                selection, image=selection.image.model_copy(update={"resources": resized})
            )
        return selection

    async def start(self) -> Any:
        selection = await self.resolve_selection()
        await self.apply_selection(selection)
        return await super().start()  # type: ignore[misc]
