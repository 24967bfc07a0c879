"""``/api/v1/images``: read the catalog (any hub token), write it (admins).

Defaults: at most one. ``default: true`` on a create/PUT/PATCH while another entry
is the default is a 409 naming it; ``POST /api/v1/images/{name}/default`` moves
the default atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from tkhub.catalog import store
from tkhub.catalog.deps import Admin, Cache, DbSession, Reader
from tkhub.catalog.fastpath import answer
from tkhub.catalog.local_env_check import EnvironmentCheckError, check_local_environment
from tkhub.catalog.models import Image
from tkhub.catalog.schemas import GpuNeed, ImageCreate, ImagePublic, ImageUpdate, Kind

router = APIRouter(prefix="/api/v1/images", tags=["images"])
T = TypeVar("T")


def _write(session: DbSession, cache: Cache, action: Callable[[], T]) -> T:
    """Run one write as one transaction; a refusal rolls everything back."""
    try:
        result = action()
        session.commit()
    except store.StoreError as e:
        session.rollback()
        raise HTTPException(e.status, str(e)) from e
    except ValidationError as e:
        session.rollback()
        raise HTTPException(422, e.errors(include_url=False, include_context=False)) from e
    except IntegrityError as e:
        session.rollback()
        raise HTTPException(409, "the change conflicts with another entry") from e
    cache.invalidate()
    return result


def _check_python(python: str | None) -> None:
    if python is None:
        return
    try:
        check_local_environment(python)
    except EnvironmentCheckError as e:
        raise HTTPException(400, str(e)) from e


@router.get("/jupyter", response_model=list[ImagePublic])
async def list_images(
    request: Request,
    caller: Reader,
    cache: Cache,
    gpu: Annotated[GpuNeed | None, Query(description="only entries with this GPU need")] = None,
    group: Annotated[str | None, Query(description="only entries visible to this group")] = None,
    include_hidden: Annotated[bool, Query(description="admins: hidden entries too")] = False,
) -> Response:
    """Served from the in-memory snapshot: no database access on this path.

    Usually answered before FastAPI sees it (``tkhub.catalog.fastpath``); this route
    answers what the shortcut passes on, and everything when the cache is off.
    ``ETag`` on every answer; ``If-None-Match`` with it gives 304.
    """
    if include_hidden and not caller.can_write:
        raise HTTPException(403, "include_hidden: only admins may list hidden entries")
    listing = cache.listing_for(
        groups=caller.groups,
        admin=caller.reads_all,
        gpu=gpu,
        group=group,
        include_hidden=include_hidden,
    )
    status, headers, body = answer(
        listing, request.headers.get("if-none-match"), request.headers.get("accept-encoding")
    )
    response = Response(body, status_code=status)
    response.raw_headers = headers  # the same headers as the shortcut's
    return response


@router.get("/{name}", response_model=ImagePublic)
async def get_image(name: str, caller: Reader, cache: Cache) -> ImagePublic:
    for entry in cache.images():
        if entry.name == name and (caller.reads_all or entry.visible_to(caller.groups)):
            return entry
    raise HTTPException(404, f"name: no image named {name!r}")


@router.post("", response_model=ImagePublic, status_code=201)
def create_image(entry: ImageCreate, _: Admin, session: DbSession, cache: Cache) -> ImagePublic:
    if entry.kind is Kind.local:
        _check_python(entry.python)
    row = _write(session, cache, lambda: store.create_image(session, entry=entry))
    return store.to_public(row)


@router.put("/{name}", response_model=ImagePublic)
def replace_image(
    name: str, entry: ImageCreate, _: Admin, session: DbSession, cache: Cache
) -> ImagePublic:
    if entry.kind is Kind.local:
        _check_python(entry.python)
    row = _write(session, cache, lambda: store.replace_image(session, name=name, entry=entry))
    return store.to_public(row)


@router.patch("/{name}", response_model=ImagePublic)
def update_image(
    name: str, update: ImageUpdate, _: Admin, session: DbSession, cache: Cache
) -> ImagePublic:
    if update.python is not None:
        _check_python(update.python)
    row: Image = _write(
        session, cache, lambda: store.update_image(session, name=name, update=update)
    )
    return store.to_public(row)


@router.post("/{name}/default", response_model=ImagePublic)
def set_default(name: str, _: Admin, session: DbSession, cache: Cache) -> ImagePublic:
    row = _write(session, cache, lambda: store.set_default(session, name=name))
    return store.to_public(row)


@router.delete("/{name}", status_code=204)
def delete_image(name: str, _: Admin, session: DbSession, cache: Cache) -> Response:
    _write(session, cache, lambda: store.delete_image(session, name=name))
    return Response(status_code=204)
