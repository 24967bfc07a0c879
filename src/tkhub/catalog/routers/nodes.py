"""``/api/v1/nodes/gpu``: the GPU inventory of the mode the catalog runs in.

The catalog itself knows no GPUs: ``create_app(settings, inventory=...)`` is given
a reader by the mode that runs it (local: NVML and the ledger; Kubernetes: nodes
and pods). Without one the endpoint says so (404) instead of showing no GPUs.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from tkhub.catalog.deps import Reader
from tkhub.errors import TkhubError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


@router.get("/gpu")
async def gpu_inventory(_: Reader, request: Request) -> dict[str, Any]:
    reader = request.app.state.inventory
    if reader is None:
        raise HTTPException(404, "this catalog serves no GPU inventory (started without one)")
    try:
        inventory = await reader()
    except TkhubError as e:
        raise HTTPException(503, f"GPU inventory could not be read: {e.user_message}") from e
    except Exception as e:
        log.exception("reading the GPU inventory failed")
        raise HTTPException(503, f"GPU inventory could not be read: {type(e).__name__}") from e
    return dict(inventory.to_dict())
