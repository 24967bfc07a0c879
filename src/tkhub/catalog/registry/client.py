"""The OCI distribution API, read-only, over one ``aiohttp`` connection pool.

At most ``concurrency`` requests are in flight (a semaphore; the pool keeps as
many HTTP/1.1 connections alive); 429, 5xx and connection errors are retried
with exponential backoff, honouring ``Retry-After``. Failures raise
``RegistryError`` with a plain reason and a flag saying whether the problem is
the registry's reachability (``transient``: keep the last good entries) or the
content itself (a malformed manifest: skip it).

``head_digests``, the re-sync's hot path, pipelines conditional ``HEAD``
requests (``tkhub.catalog.registry.pipelined_heads``); whatever it cannot settle
goes to ``manifest_digest``, the ordinary path with auth and retries.

Config blobs are content-addressed: ``config_labels`` fetches each distinct
config digest once per registry and keeps the parsed labels (``LABELS``, a
bounded cache that outlives one sync), so tags and repositories that share an
image config, and a re-pushed manifest over an unchanged config, cost no blob
request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from tkhub.catalog.registry import pipelined_heads
from tkhub.catalog.registry.bearer import Authorizer, load_credentials, scope_for, token_from
from tkhub.catalog.registry.wire import (
    ACCEPT_HEADERS,
    INDEX_TYPES,
    MANIFEST_TYPES,
    RETRY_STATUS,
    USER_AGENT,
    proxy_for,
    tls_context,
)
from tkhub.settings import RegistrySettings

log = logging.getLogger(__name__)

# Requests in flight per registry (bench/registry_sync.py, docs/benchmarks.md).
DEFAULT_CONCURRENCY = 8
_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?')
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


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


@dataclass(frozen=True)
class Response:
    """One answer, read whole (bodies here are small JSON documents)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: URL

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


class LabelCache:
    """Labels by (registry URL, config digest); least recently used dropped first."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> dict[str, str] | None:
        labels = self._items.get(key)
        if labels is not None:
            self._items.move_to_end(key)
        return labels

    def put(self, key: tuple[str, str], labels: dict[str, str]) -> None:
        self._items[key] = labels
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


LABELS = LabelCache()


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
        self.base = registry.url.rstrip("/")
        self._auth = Authorizer(load_credentials(registry))
        self.slots = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self.verify = registry.verify_tls
        self.timeout_s = timeout
        self._http: aiohttp.ClientSession | None = None
        self._configs: dict[str, asyncio.Future[dict[str, str]]] = {}

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:  # made inside the running loop, on first use
            connector = aiohttp.TCPConnector(
                limit=self.concurrency + 1,  # + a token request while all slots wait
                ssl=tls_context(self.verify),
                keepalive_timeout=30,
            )
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
            )
        return self._http

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _url(self, url: str) -> URL:
        """A path of this registry (quoted as needed) or a full URL it gave."""
        return URL(self.base + url) if url.startswith("/") else URL(url, encoded=True)

    async def _send(self, method: str, url: URL, headers: dict[str, str] | None = None) -> Response:
        """One exchange, answering a 401 challenge once (basic or bearer token)."""
        scope = scope_for(url.path)
        header = self._auth.header(scope)
        sent = {**(headers or {}), "Authorization": header} if header else headers
        response = await self._exchange(method, url, sent)
        if response.status != 401:
            return response
        answer = self._auth.answer(response.headers.get("WWW-Authenticate", ""))
        if answer is None:
            return response
        scheme, params = answer
        if scheme == "bearer":
            query, token_headers = self._auth.token_query(params, scope)
            realm = URL(params["realm"]).update_query(query)
            token_response = await self._exchange("GET", realm, token_headers)
            token = token_from(token_response.status, token_response.body)
            if token is None:
                self._auth.refused(params, scope, token_response.status)
                return response
            self._auth.tokens[scope] = token
        return await self._exchange(
            method, url, {**(headers or {}), "Authorization": self._auth.header(scope) or ""}
        )

    async def _exchange(self, method: str, url: URL, headers: dict[str, str] | None) -> Response:
        proxy = proxy_for(url.scheme, url.host or "")
        async with self.http.request(method, url, headers=headers, proxy=proxy) as r:
            body = b"" if method == "HEAD" else await r.read()
            return Response(r.status, r.headers, body, r.url)

    async def request(
        self, method: str, url: str, headers: dict[str, str] | None = None
    ) -> Response:
        """One request with retries; any non-2xx answer left raises ``RegistryError``."""
        target = self._url(url)
        for attempt in range(self.retries + 1):
            try:
                async with self.slots:
                    response = await self._send(method, target, headers)
            except TRANSPORT_ERRORS as e:
                if attempt == self.retries:
                    raise RegistryError(
                        f"{self.registry.url} did not answer ({type(e).__name__}) "
                        f"after {attempt + 1} tries"
                    ) from e
                await asyncio.sleep(self.backoff * 2**attempt)
                continue
            if response.status not in RETRY_STATUS or attempt == self.retries:
                break
            await asyncio.sleep(self._delay(response, attempt))
        if response.is_success:
            return response
        raise _status_error(response, attempt + 1)

    def _delay(self, response: Response, attempt: int) -> float:
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
            link = _NEXT.search(response.headers.get("Link", ""))
            next_url = str(response.url.join(URL(link.group(1), encoded=True))) if link else None
        return items

    async def repositories(self, page_size: int = 100) -> list[str]:
        return await self._paginated(f"/v2/_catalog?n={page_size}", "repositories")

    async def tags(self, repository: str, page_size: int = 100) -> list[str]:
        return await self._paginated(f"/v2/{repository}/tags/list?n={page_size}", "tags")

    async def manifest_digest(self, repository: str, reference: str) -> str | None:
        """``HEAD`` the manifest: its digest without the body (None if not given)."""
        response = await self.request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", ACCEPT_HEADERS
        )
        return response.headers.get("Docker-Content-Digest")

    async def head_digests(
        self, known: Mapping[tuple[str, str], str | None]
    ) -> dict[tuple[str, str], str]:
        """Digests of many ``(repository, tag)`` manifests, ``HEAD`` requests pipelined
        (``tkhub.catalog.registry.pipelined_heads``); ask ``manifest_digest`` for the rest."""
        return await pipelined_heads.head_digests(self, known)

    def auth_header(self, scope: str) -> str | None:
        return self._auth.header(scope)

    async def manifest(self, repository: str, reference: str) -> Manifest:
        response = await self.request(
            "GET", f"/v2/{repository}/manifests/{reference}", ACCEPT_HEADERS
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
            "sha256:" + hashlib.sha256(response.body).hexdigest()
        )
        return Manifest(media_type, body, digest)

    async def blob_json(self, repository: str, digest: str) -> dict[str, Any]:
        return _json(await self.request("GET", f"/v2/{repository}/blobs/{digest}"))

    async def config_labels(self, repository: str, digest: str) -> dict[str, str]:
        """The labels of config blob ``digest``: fetched once, however many ask."""
        cached = LABELS.get((self.base, digest))
        if cached is not None:
            return cached
        pending = self._configs.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch_labels(repository, digest))
            self._configs[digest] = pending
            pending.add_done_callback(lambda _: self._configs.pop(digest, None))
        return await asyncio.shield(pending)

    async def _fetch_labels(self, repository: str, digest: str) -> dict[str, str]:
        blob = await self.blob_json(repository, digest)
        config = blob.get("config") or {}
        labels = config.get("Labels") if isinstance(config, dict) else None
        if not isinstance(labels or {}, dict):
            raise RegistryError("config.Labels is not a mapping", transient=False)
        parsed = {str(k): str(v) for k, v in (labels or {}).items()}
        LABELS.put((self.base, digest), parsed)
        return parsed


def _json(response: Response) -> dict[str, Any]:
    try:
        body = json.loads(response.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RegistryError(
            f"{response.url.path}: the answer is not a JSON object", transient=False
        )
    return body


def _status_error(response: Response, tries: int) -> RegistryError:
    status = response.status
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
