"""FastAPI dependencies with ``Annotated`` aliases, shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session

from tkhub.catalog.cache import CatalogCache
from tkhub.catalog.hub_tokens import CATALOG_ADMIN_SCOPE, Caller, authenticate
from tkhub.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; the router commits, anything else rolls back."""
    with request.app.state.sessions() as session:
        yield session


def get_cache(request: Request) -> CatalogCache:
    cache: CatalogCache = request.app.state.cache
    return cache


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    return await authenticate(request.app.state.hub_auth, authorization)


async def get_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    if not caller.can_write:
        raise HTTPException(
            403, f"authorization: writing needs an admin user or the scope {CATALOG_ADMIN_SCOPE}"
        )
    return caller


DbSession = Annotated[Session, Depends(get_session)]
Cache = Annotated[CatalogCache, Depends(get_cache)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Reader = Annotated[Caller, Depends(get_caller)]
Admin = Annotated[Caller, Depends(get_admin)]
