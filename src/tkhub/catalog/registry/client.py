"""The OCI distribution API, read-only, over one ``aiohttp`` connection pool.

At most ``concurrency`` requests are in flight (a semaphore; the pool keeps as
many HTTP/1.1 connections alive); 429, 5xx and connection errors are retried
with exponential backoff, honouring ``Retry-After``. Failures raise
``RegistryError`` with a plain reason and a flag saying whether the problem is
the registry's reachability (``transient``: keep the last good entries) or the
content itself (a malformed manifest: skip it).

``head_digests`` is the re-sync's hot path: one conditional ``HEAD`` per known
tag (``If-None-Match: "<digest the catalog holds>"``; a distribution registry
answers ``304`` without reading the manifest), sent pipelined (windows of
``PIPELINE_WINDOW``) over at most ``concurrency`` plain keep-alive connections.
It is best effort: anything but that ``304`` or a ``200`` with a digest (a
challenge, 404, a closed or odd connection, a proxy in the environment) leaves
that tag to ``manifest_digest``, the ordinary path with auth and retries; a 429
or 5xx also stops that connection's pipeline (its tags go the ordinary way,
with backoff).

Config blobs are content-addressed: ``config_labels`` fetches each distinct
config digest once per registry and keeps the parsed labels (``LABELS``, a
bounded cache that outlives one sync), so tags and repositories that share an
image config, and a re-pushed manifest over an unchanged config, cost no blob
request.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import re
import ssl
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from multidict import CIMultiDictProxy
from yarl import URL

from tkhub.catalog.registry.bearer import Authorizer, load_credentials, scope_for, token_from
from tkhub.settings import RegistrySettings

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
ACCEPT_HEADERS = {"Accept": ACCEPT}
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# Requests in flight per registry (bench/registry_sync.py, docs/benchmarks.md).
DEFAULT_CONCURRENCY = 8
_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?')
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)
USER_AGENT = "tkhub-registry-sync"
PIPELINED_AGENT = f"{USER_AGENT} (pipelined)"  # tells the two paths apart in access logs
PIPELINE_WINDOW = 32  # HEADs written at once on one connection
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/:@-]+$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")  # OCI digest grammar
PIPELINE_ERRORS = (OSError, EOFError, ValueError, asyncio.TimeoutError, asyncio.LimitOverrunError)


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
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._verify = registry.verify_tls
        self._timeout_s = timeout
        self._http: aiohttp.ClientSession | None = None
        self._configs: dict[str, asyncio.Future[dict[str, str]]] = {}

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:  # made inside the running loop, on first use
            connector = aiohttp.TCPConnector(
                limit=self._concurrency + 1,  # + a token request while all slots wait
                ssl=_tls_context(self._verify),
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
        proxy = _proxy_for(url.scheme, url.host or "")
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
                async with self._slots:
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
        """Digests of many ``(repository, tag)`` manifests, ``HEAD`` requests pipelined.

        ``known``: the digest each one had (or None). It is sent as
        ``If-None-Match``; a ``304`` means the manifest still has it (the
        distribution registry then skips reading the manifest). Only answers
        that were a ``304`` to that, or a ``200`` with ``Docker-Content-Digest``;
        ask ``manifest_digest`` for the others (it answers challenges, retries).
        """
        target = urlsplit(self.base)
        wanted = [k for k in known if _SAFE_PATH.match(f"{k[0]}/{k[1]}")]
        if not wanted or target.scheme not in ("http", "https") or _proxied(target):
            return {}
        etags = {k: d for k in wanted if (d := known[k]) and _DIGEST.match(d)}
        found: dict[tuple[str, str], str] = {}
        lanes = min(self._concurrency, max(1, len(wanted) // PIPELINE_WINDOW))
        await asyncio.gather(
            *(self._pipeline(wanted[i::lanes], etags, found) for i in range(lanes))
        )
        return found

    def _head_request(
        self, key: tuple[str, str], host: str, prefix: str, etag: str | None
    ) -> bytes:
        path = f"{prefix}/v2/{key[0]}/manifests/{key[1]}"
        header = self._auth.header(scope_for(f"/v2/{key[0]}/manifests/"))
        auth = f"Authorization: {header}\r\n" if header else ""
        condition = f'If-None-Match: "{etag}"\r\n' if etag else ""
        return (
            f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {PIPELINED_AGENT}\r\n"
            f"Accept: {ACCEPT}\r\n{auth}{condition}\r\n"
        ).encode()

    async def _pipeline(
        self,
        keys: list[tuple[str, str]],
        etags: dict[tuple[str, str], str],
        found: dict[tuple[str, str], str],
    ) -> None:
        """One keep-alive connection at a time; reconnects when the server closes."""
        target = urlsplit(self.base)
        tls = target.scheme == "https"
        host, port = target.hostname or "", target.port or (443 if tls else 80)
        pending = deque(keys)
        failures = 0
        async with self._slots:
            while pending and failures < 2:
                writer = None
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(
                            host, port, ssl=_tls_context(self._verify) if tls else None
                        ),
                        self._timeout_s,
                    )
                    await self._exchange_heads(reader, writer, pending, etags, found, target)
                except PIPELINE_ERRORS as e:
                    failures += 1
                    log.debug("registry %s: pipelined HEADs: %r", self.registry.name, e)
                finally:
                    if writer is not None:
                        writer.close()

    async def _exchange_heads(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: deque[tuple[str, str]],
        etags: dict[tuple[str, str], str],
        found: dict[tuple[str, str], str],
        target: Any,
    ) -> None:
        """Windows of HEADs until ``pending`` is empty or the server closes."""
        host, prefix = target.netloc, target.path.rstrip("/")
        while pending:
            window = [pending[i] for i in range(min(PIPELINE_WINDOW, len(pending)))]
            writer.write(
                b"".join(self._head_request(k, host, prefix, etags.get(k)) for k in window)
            )
            for key in window:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._timeout_s)
                status, digest, closing = _parse_head(head)
                pending.popleft()
                if status == 200 and digest:
                    found[key] = digest
                elif status == 304 and key in etags:  # still the digest we know
                    found[key] = etags[key]
                elif status in RETRY_STATUS:  # busy or failing: no more of this, back off
                    pending.clear()
                    return
                if closing:
                    return  # the rest of the window is sent again on a new connection

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


def _parse_head(head: bytes) -> tuple[int, str | None, bool]:
    """(status, Docker-Content-Digest, connection closing) of one response head."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(rest) < 3 or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP/1 response: {lines[0][:40]!r}")
    status = int(rest[:3])
    if status < 200:
        raise ValueError(f"interim response {status} to a HEAD")
    digest, closing = None, version == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"docker-content-digest":
            digest = value.strip().decode("ascii", "replace")
        elif name == b"connection":
            closing = value.strip().lower() != b"keep-alive"
    return status, digest, closing


@functools.lru_cache(maxsize=64)
def _proxy_for(scheme: str, host: str) -> str | None:
    """The proxy HTTP(S)_PROXY / ALL_PROXY name for this host, unless NO_PROXY
    exempts it (what httpx did by default); looked up once per host, not per
    request as aiohttp's ``trust_env`` would (netrc included)."""
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


def _proxied(target: Any) -> bool:
    """True when the environment routes requests to this registry through a proxy."""
    return _proxy_for(target.scheme, target.hostname or "") is not None


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    """The CA bundle httpx (and so the preflight check) trusts: certifi, or
    SSL_CERT_FILE / SSL_CERT_DIR when set."""
    return httpx.create_ssl_context(verify=verify)


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
