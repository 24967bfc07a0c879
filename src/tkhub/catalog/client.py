"""Async client of the catalog service, used by the spawners, the CLI and the spawn page.

Failures split in two: the catalog not answering (timeout, refused connection,
5xx) raises ``CatalogUnavailable`` with a message a user can act on; the catalog
refusing a request (4xx) raises ``CatalogRequestError`` with its status and detail.
Tokens are sent in the ``Authorization`` header and never appear in a message.

``list_images`` keeps the last body and ``ETag`` of each listing (per catalog,
token and filters, shared by all clients in the process, since a spawner opens a
new client for every page) and sends ``If-None-Match``: while the catalog has not
changed it answers ``304 Not Modified`` with no body.
"""

from __future__ import annotations

import hashlib
from types import TracebackType
from typing import Any

import httpx
from pydantic import TypeAdapter

from tkhub.catalog.schemas import ImageCreate, ImagePublic, ImageUpdate
from tkhub.errors import CatalogUnavailable

API = "/api/v1"
KEPT_LISTINGS = 16  # (catalog, token, filters) listings kept for If-None-Match
_image_list = TypeAdapter(list[ImagePublic])
# (base_url, token hash, query) -> (ETag, body); oldest first
_kept: dict[tuple[str, str, tuple[tuple[str, str], ...]], tuple[str, bytes]] = {}


class CatalogRequestError(Exception):
    """The catalog answered 4xx: ``status`` and its ``detail`` (field and reason)."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"catalog refused the request ({status}): {detail}")
        self.status = status
        self.detail = detail


class CatalogClient:
    """``CatalogClient(base_url, token)``; close with ``aclose()`` or use ``async with``."""

    def __init__(self, base_url: str, token: str | None, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"token {token}"} if token else {}
        self._token_id = hashlib.sha256((token or "").encode()).hexdigest()
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> CatalogClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response (2xx or 3xx), or ``CatalogUnavailable``/``CatalogRequestError``."""
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as e:
            raise CatalogUnavailable(
                f"The image catalog at {self.base_url} did not answer within {self.timeout:g} s; "
                "ask your administrator to check that the catalog service is running.",
                log_message=f"catalog timeout on {method} {path}: {e!r}",
            ) from e
        except httpx.HTTPError as e:
            raise CatalogUnavailable(
                f"The image catalog at {self.base_url} cannot be reached; "
                "ask your administrator to check that the catalog service is running.",
                log_message=f"catalog connection error on {method} {path}: {e!r}",
            ) from e
        if response.status_code >= 500:
            raise CatalogUnavailable(
                f"The image catalog at {self.base_url} answered with an error "
                f"({response.status_code}); ask your administrator to check its log.",
                log_message=f"catalog {response.status_code} on {method} {path}: "
                f"{response.text[:500]}",
            )
        if response.status_code >= 400:
            raise CatalogRequestError(response.status_code, _detail(response))
        return response

    async def list_images(
        self, gpu: str | None = None, group: str | None = None, *, include_hidden: bool = False
    ) -> list[ImagePublic]:
        params = {"gpu": gpu, "group": group}
        query = {k: v for k, v in params.items() if v is not None}
        if include_hidden:
            query["include_hidden"] = "true"
        key = (self.base_url, self._token_id, tuple(sorted(query.items())))
        kept = _kept.get(key)
        headers = {"If-None-Match": kept[0]} if kept else {}
        response = await self._send("GET", f"{API}/images/jupyter", params=query, headers=headers)
        if response.status_code == 304 and kept:
            return _image_list.validate_json(kept[1])
        body = response.content
        images = _image_list.validate_json(body)
        etag = response.headers.get("etag")
        _kept.pop(key, None)
        if etag:
            _kept[key] = (etag, body)
            while len(_kept) > KEPT_LISTINGS:
                del _kept[next(iter(_kept))]
        return images

    async def get_image(self, name: str) -> ImagePublic:
        body = await self._request("GET", f"{API}/images/{name}")
        return ImagePublic.model_validate(body)

    async def create_image(self, entry: ImageCreate) -> ImagePublic:
        body = await self._request("POST", f"{API}/images", json=entry.model_dump(mode="json"))
        return ImagePublic.model_validate(body)

    async def replace_image(self, name: str, entry: ImageCreate) -> ImagePublic:
        body = await self._request(
            "PUT", f"{API}/images/{name}", json=entry.model_dump(mode="json")
        )
        return ImagePublic.model_validate(body)

    async def update_image(self, name: str, update: ImageUpdate) -> ImagePublic:
        payload = update.model_dump(mode="json", exclude_unset=True)
        body = await self._request("PATCH", f"{API}/images/{name}", json=payload)
        return ImagePublic.model_validate(body)

    async def set_default(self, name: str) -> ImagePublic:
        body = await self._request("POST", f"{API}/images/{name}/default")
        return ImagePublic.model_validate(body)

    async def delete_image(self, name: str) -> None:
        await self._request("DELETE", f"{API}/images/{name}")

    async def get_gpu_inventory(self) -> dict[str, Any]:
        body = await self._request("GET", f"{API}/nodes/gpu")
        return dict(body)

    async def health(self) -> dict[str, Any]:
        return dict(await self._request("GET", "/health"))


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except ValueError:
        return response.text
