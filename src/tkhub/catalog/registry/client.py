"""The OCI distribution API, read-only, over one ``httpx.AsyncClient``.

At most ``concurrency`` requests are in flight (a semaphore); 429, 5xx and
connection errors are retried with exponential backoff, honouring
``Retry-After``. Failures raise ``RegistryError`` with a plain reason and a flag
saying whether the problem is the registry's reachability (``transient``: keep
the last good entries) or the content itself (a malformed manifest: skip it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from tkhub.catalog.registry.auth import RegistryAuth, load_credentials
from tkhub.config import RegistrySettings

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# Requests in flight per registry. More is slower here: httpcore scans its pool on
# every request, and a local registry is CPU-bound (bench/registry_sync.py).
DEFAULT_CONCURRENCY = 8


class RegistryError(Exception):
    """A request that failed; ``transient`` when the registry, not the data, failed."""

    def __init__(self, reason: str, *, transient: bool = True, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.status = status


@dataclass(frozen=True)
class Manifest:
    media_type: str
    body: dict[str, Any]
    digest: str


def registry_host(registry: RegistrySettings) -> str:
    """The host (and port) the cluster pulls from: ``pull_host`` or the URL's."""
    return registry.pull_host or urlsplit(registry.url).netloc


class RegistryClient:
    """Read-only client for one registry; use as ``async with``."""

    def __init__(
        self,
        registry: RegistrySettings,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
        max_retry_after: float = 10.0,
    ) -> None:
        self.registry = registry
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self._slots = asyncio.Semaphore(concurrency)
        self.http = httpx.AsyncClient(
            base_url=registry.url.rstrip("/"),
            auth=RegistryAuth(load_credentials(registry)),
            verify=registry.verify_tls,
            timeout=timeout,
            follow_redirects=True,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request with retries; any non-2xx answer left raises ``RegistryError``."""
        for attempt in range(self.retries + 1):
            try:
                async with self._slots:
                    response = await self.http.request(method, url, **kwargs)
            except httpx.TransportError as e:
                if attempt == self.retries:
                    raise RegistryError(
                        f"{self.registry.url} did not answer ({type(e).__name__}) "
                        f"after {attempt + 1} tries"
                    ) from e
                await asyncio.sleep(self.backoff * 2**attempt)
                continue
            if response.status_code not in RETRY_STATUS or attempt == self.retries:
                break
            await asyncio.sleep(self._delay(response, attempt))
        if response.is_success:
            return response
        raise _status_error(response, attempt + 1)

    def _delay(self, response: httpx.Response, attempt: int) -> float:
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.strip().isdigit():
            return min(float(retry_after), self.max_retry_after)
        return float(self.backoff * 2**attempt)

    async def ping(self) -> None:
        await self.request("GET", "/v2/")

    async def _paginated(self, url: str, key: str) -> list[str]:
        items: list[str] = []
        seen: set[str] = set()
        next_url: str | None = url
        while next_url and next_url not in seen:
            seen.add(next_url)
            response = await self.request("GET", next_url)
            items.extend(_json(response).get(key) or [])
            link = response.links.get("next", {}).get("url")
            next_url = str(response.url.join(link)) if link else None
        return items

    async def repositories(self, page_size: int = 100) -> list[str]:
        return await self._paginated(f"/v2/_catalog?n={page_size}", "repositories")

    async def tags(self, repository: str, page_size: int = 100) -> list[str]:
        return await self._paginated(f"/v2/{repository}/tags/list?n={page_size}", "tags")

    async def manifest_digest(self, repository: str, reference: str) -> str | None:
        """``HEAD`` the manifest: its digest without the body (None if not given)."""
        response = await self.request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT}
        )
        return response.headers.get("Docker-Content-Digest")

    async def manifest(self, repository: str, reference: str) -> Manifest:
        response = await self.request(
            "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT}
        )
        body = _json(response)
        media_type = str(body.get("mediaType") or response.headers.get("Content-Type", ""))
        media_type = media_type.split(";")[0].strip()
        if media_type not in (*MANIFEST_TYPES, *INDEX_TYPES):
            raise RegistryError(
                f"manifest of type {media_type or 'unknown'!r} is not supported "
                "(OCI or Docker schema 2 needed)",
                transient=False,
            )
        digest = response.headers.get("Docker-Content-Digest") or (
            "sha256:" + hashlib.sha256(response.content).hexdigest()
        )
        return Manifest(media_type, body, digest)

    async def blob_json(self, repository: str, digest: str) -> dict[str, Any]:
        return _json(await self.request("GET", f"/v2/{repository}/blobs/{digest}"))


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RegistryError(
            f"{response.url.path}: the answer is not a JSON object", transient=False
        )
    return body


def _status_error(response: httpx.Response, tries: int) -> RegistryError:
    status = response.status_code
    path = response.url.path
    if status in (401, 403):
        return RegistryError(
            f"{path}: HTTP {status}, not authorized; check the registry's username "
            "and password_file/password_env",
            status=status,
        )
    if status in RETRY_STATUS:
        return RegistryError(f"{path}: HTTP {status} after {tries} tries", status=status)
    # 404 and other 4xx: the thing is not there or not valid; not a registry outage.
    return RegistryError(f"{path}: HTTP {status}", transient=False, status=status)
