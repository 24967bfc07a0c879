"""``/health``: no auth; says whether the database answers."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tkhub.catalog.deps import Cache, DbSession

router = APIRouter(tags=["health"])


@router.get("/health")
def health(session: DbSession, cache: Cache, response: Response) -> dict[str, object]:
    try:
        session.execute(text("SELECT 1"))
        db = "ok"
    except SQLAlchemyError as e:
        db = f"error: {type(e).__name__}"
        response.status_code = 503
    return {"status": "ok" if db == "ok" else "degraded", "db": db, "generation": cache.generation}
