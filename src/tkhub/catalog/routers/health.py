"""``/health``: no auth; says whether the database answers and how many images it holds.

The count lets ``tkhub deploy verify`` check the catalog through the API server's
service proxy, which authenticates the caller and drops its ``Authorization``
header: no catalog token can pass that way.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from tkhub.catalog.deps import Cache, DbSession
from tkhub.catalog.models import Image

router = APIRouter(tags=["health"])


@router.get("/health")
def health(session: DbSession, cache: Cache, response: Response) -> dict[str, object]:
    images: int | None = None
    try:
        session.execute(text("SELECT 1"))
        images = session.scalar(select(func.count()).select_from(Image).where(~Image.hidden))
        db = "ok"
    except SQLAlchemyError as e:
        db = f"error: {type(e).__name__}"
        response.status_code = 503
    return {
        "status": "ok" if db == "ok" else "degraded",
        "db": db,
        "generation": cache.generation,
        "images": images,
    }
