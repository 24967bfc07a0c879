"""``/api/v1/nodes/gpu``: this machine's GPU inventory (NVML, read in a thread)."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from tkhub.catalog.deps import AppSettings, Reader

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


def _read_inventory(settings: Any) -> dict[str, Any]:
    try:
        inventory_mod = importlib.import_module("tkhub.local.inventory")
    except ImportError as e:  # the GPU part is optional at this layer
        raise HTTPException(503, f"GPU inventory is not available: {e}") from e
    ledger = None
    try:
        ledger_mod = importlib.import_module("tkhub.local.ledger")
        ledger = ledger_mod.GpuLedger(
            settings.state_dir / "gpu-ledger.json",
            max_servers_per_gpu=settings.max_servers_per_gpu,
        )
    except (ImportError, AttributeError, OSError, TypeError) as e:
        log.warning("GPU ledger not available, inventory without holders: %s", e)
    inventory = inventory_mod.local_inventory(ledger=ledger)
    return dict(inventory.to_dict())


@router.get("/gpu")
async def gpu_inventory(_: Reader, settings: AppSettings) -> dict[str, Any]:
    try:
        return await run_in_threadpool(_read_inventory, settings)
    except HTTPException:
        raise
    except Exception as e:
        log.exception("reading the GPU inventory failed")
        raise HTTPException(503, f"GPU inventory could not be read: {type(e).__name__}") from e
