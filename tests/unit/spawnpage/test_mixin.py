"""The spawners' shared mixin: the form from live data, checks before spawning.

``Stand`` is the mixin with the catalog and inventory fetchers replaced and the
few members a JupyterHub spawner gives it (the user, the stored user options).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from bs4 import BeautifulSoup
from form_data import User

from tkhub.errors import CatalogUnavailable
from tkhub.spawner import TkSpawnerMixin
from tkhub.spawnpage.http_errors import BadSelection, SpawnPageUnavailable


class Stand(TkSpawnerMixin):
    _log_name = "alice/"

    def __init__(self, entries, inventory, saved=None, down=False):
        super().__init__(log=logging.getLogger("test"))
        self.entries, self.inventory, self.down = entries, inventory, down
        self.user = User()
        self.user_options = {}
        self.orm_spawner = SimpleNamespace(user_options=saved)

    async def fetch_catalog(self):
        if self.down:
            raise CatalogUnavailable("The image catalog at http://127.0.0.1:9 cannot be reached.")
        return self.entries

    async def fetch_inventory(self):
        return self.inventory


def soup(html):
    return BeautifulSoup(html, "html.parser")


async def test_form_preselects_the_saved_options(entries, local_inv):
    spawner = Stand(entries, local_inv, saved={"image": ["plain"], "gpu": ["none"]})
    page = soup(await spawner.render_spawn_page())
    assert page.select_one('input[name="image"][checked]')["value"] == "plain"


async def test_catalog_down_gives_the_reason_in_the_form(entries, local_inv):
    page = soup(await Stand(entries, local_inv, down=True).render_spawn_page())
    assert "cannot be reached" in page.select_one("#tk-error").get_text()
    with pytest.raises(SpawnPageUnavailable) as info:
        await Stand(entries, local_inv, down=True).select({"image": ["x"]}, link=True)
    assert info.value.status_code == 503


async def test_refused_link_is_shown_again_once(entries, local_inv):
    spawner = Stand(entries, local_inv, saved={"image": ["base"]})
    with pytest.raises(BadSelection):
        await spawner.select({"image": ["torch"], "gpu": ["none"]}, link=True)
    page = soup(await spawner.render_spawn_page())
    assert page.select_one('input[name="image"][checked]')["value"] == "torch"
    again = soup(await spawner.render_spawn_page())
    assert again.select_one('input[name="image"][checked]')["value"] == "base"


async def test_good_submission_is_kept_as_raw_params(entries, local_inv):
    spawner = Stand(entries, local_inv)
    raw = {"image": ["torch"], "gpu": ["auto"], "count": ["1"], "_xsrf": ["t"]}
    assert await spawner.options_from_form(raw) == {
        "image": ["torch"],
        "gpu": ["auto"],
        "count": ["1"],
    }
