"""``python -m tkhub.local.catalog_service``: the catalog with this machine's GPUs.

The hub starts it as its managed service ``catalog``; ``GET /api/v1/nodes/gpu``
answers with NVML's devices and who holds them in the ledger.
"""

from __future__ import annotations

import asyncio

from tkhub.catalog.__main__ import main as serve_catalog
from tkhub.catalog.app import InventoryReader
from tkhub.gpu.model import Inventory
from tkhub.local.inventory import local_inventory
from tkhub.local.ledger import ledger_for
from tkhub.settings import Settings, load_settings


def local_inventory_reader(settings: Settings) -> InventoryReader:
    """An async reader of this machine's inventory with the ledger's holders."""
    ledger = ledger_for(settings)

    async def read() -> Inventory:
        return await asyncio.to_thread(local_inventory, ledger)

    return read


def main() -> None:
    serve_catalog(local_inventory_reader(load_settings()))


if __name__ == "__main__":
    main()
