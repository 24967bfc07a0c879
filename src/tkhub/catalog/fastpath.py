"""A plain ASGI shortcut for the hottest read: ``GET /api/v1/images/jupyter``.

Every spawn page and every spawn lists the catalog. The answer is already in memory
(``CatalogCache.listing``: body and ETag per filter and visibility), so FastAPI's
routing, dependency injection and validation would be most of the cost of a request.
``ImageListShortcut`` sits in front of them and answers the common case itself:

- ``GET`` of the list (directly or under the service prefix), cache enabled;
- a query of at most ``gpu`` (a valid value), ``group`` and ``include_hidden``
  (``true``/``false``), each once;
- an ``Authorization`` token the hub knows (``HubAuth``'s cache: a dict lookup
  once the token has been seen), allowed to see what it asks for.

Anything else (no token, an unknown token, the hub not answering, an odd query, a
non-admin asking for hidden entries) goes on to the FastAPI route, which answers it
exactly as before (401, 403, 422, 503 with their usual bodies). The shortcut never
refuses a request itself, so it cannot answer differently from the route.

It answers ``304 Not Modified`` to an ``If-None-Match`` naming the current ETag and
sends the body gzip-compressed to clients that accept it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from tkhub.catalog.cache import CatalogCache, Listing
from tkhub.catalog.hub_tokens import _HEADER, caller_from_model
from tkhub.catalog.schemas import GpuNeed

log = logging.getLogger(__name__)

LIST_PATH = "/api/v1/images/jupyter"
_GPU = {g.value: g for g in GpuNeed}
_BOOL = {"true": True, "false": False}
_PARAMS = frozenset({"gpu", "group", "include_hidden"})


def wants_gzip(accept_encoding: str | None) -> bool:
    """``gzip`` listed in ``Accept-Encoding`` and not with ``q=0``."""
    for item in (accept_encoding or "").lower().split(","):
        coding, _, params = item.partition(";")
        if coding.strip() == "gzip":
            q = params.strip().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


def answer(
    listing: Listing, if_none_match: str | None, accept_encoding: str | None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body for ``listing``: 304, or 200 (gzip if accepted)."""
    tag = [(b"etag", listing.etag.encode()), (b"vary", b"Accept-Encoding")]
    if listing.matches(if_none_match):
        return 304, tag, b""
    if wants_gzip(accept_encoding):
        body = listing.gzipped()
        tag.append((b"content-encoding", b"gzip"))
    else:
        body = listing.body
    head = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    return 200, head + tag, body


class ImageListShortcut:
    """ASGI middleware; ``app.add_middleware(ImageListShortcut, prefix=...)``.

    Reads ``cache`` and ``hub_auth`` from the application's state at each request
    (``scope["app"]``), so whatever the app holds now is what is used.
    """

    def __init__(self, app: ASGIApp, *, prefix: str = "") -> None:
        self.app = app
        prefix = prefix.rstrip("/")
        self.paths = frozenset({LIST_PATH, prefix + LIST_PATH})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] not in self.paths
            or scope["method"] != "GET"
            or not await self._answer(scope, send)
        ):
            await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        """Send the answer and return True, or send nothing and return False."""
        state = scope["app"].state
        cache: CatalogCache = state.cache
        if not cache.enabled:
            return False
        query = _query(scope["query_string"])
        if query is None:
            return False
        gpu, group, include_hidden = query
        authorization = if_none_match = accept_encoding = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding" and accept_encoding is None:
                accept_encoding = value.decode("latin-1")
        match = _HEADER.match(authorization or "")
        if not match:
            return False
        try:
            model: dict[str, Any] | None = await state.hub_auth.user_for_token(
                match.group(1), sync=False
            )
        except Exception:  # the route asks again and says what went wrong
            return False
        if not model:
            return False
        caller = caller_from_model(model)
        if include_hidden and not caller.can_write:
            return False
        listing = cache.listing_for(
            groups=caller.groups,
            admin=caller.reads_all,
            gpu=gpu,
            group=group,
            include_hidden=include_hidden,
        )
        status, headers, body = answer(listing, if_none_match, accept_encoding)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True


def _query(raw: bytes) -> tuple[GpuNeed | None, str | None, bool] | None:
    """The filters, or None when the route should parse (and maybe refuse) the query."""
    if not raw:
        return None, None, False
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names) or not _PARAMS.issuperset(names):
        return None
    values = dict(pairs)
    gpu: GpuNeed | None = None
    if "gpu" in values:
        gpu = _GPU.get(values["gpu"])
        if gpu is None:
            return None
    include_hidden = _BOOL.get(values.get("include_hidden", "false"))
    if include_hidden is None:
        return None
    return gpu, values.get("group"), include_hidden
