"""Re-sync's hot path: conditional ``HEAD`` requests pipelined over keep-alive connections.

One ``HEAD`` per known tag (``If-None-Match: "<digest the catalog holds>"``; a
distribution registry answers ``304`` without reading the manifest), sent in windows
of ``PIPELINE_WINDOW`` over at most ``concurrency`` plain connections. Best effort:
anything but that ``304`` or a ``200`` with a digest (a challenge, 404, a closed or
odd connection, a proxy in the environment) leaves that tag to the client's ordinary
``manifest_digest``; a 429 or 5xx also stops that connection's pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from tkhub.catalog.registry.bearer import scope_for
from tkhub.catalog.registry.wire import ACCEPT, RETRY_STATUS, USER_AGENT, proxied, tls_context
from tkhub.settings import RegistrySettings

log = logging.getLogger(__name__)

PIPELINED_AGENT = f"{USER_AGENT} (pipelined)"  # tells the two paths apart in access logs
PIPELINE_WINDOW = 32  # HEADs written at once on one connection
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/:@-]+$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")  # OCI digest grammar
PIPELINE_ERRORS = (OSError, EOFError, ValueError, asyncio.TimeoutError, asyncio.LimitOverrunError)


class RegistryClient(Protocol):
    """What the pipeline uses of ``tkhub.catalog.registry.client.RegistryClient``."""

    registry: RegistrySettings
    base: str
    concurrency: int
    slots: asyncio.Semaphore
    verify: bool
    timeout_s: float

    def auth_header(self, scope: str) -> str | None: ...


async def head_digests(
    client: RegistryClient, known: Mapping[tuple[str, str], str | None]
) -> dict[tuple[str, str], str]:
    """Digests of many ``(repository, tag)`` manifests, ``HEAD`` requests pipelined.

    ``known``: the digest each one had (or None). It is sent as
    ``If-None-Match``; a ``304`` means the manifest still has it (the
    distribution registry then skips reading the manifest). Only answers
    that were a ``304`` to that, or a ``200`` with ``Docker-Content-Digest``;
    ask ``manifest_digest`` for the others (it answers challenges, retries).
    """
    target = urlsplit(client.base)
    wanted = [k for k in known if _SAFE_PATH.match(f"{k[0]}/{k[1]}")]
    if not wanted or target.scheme not in ("http", "https") or proxied(target):
        return {}
    etags = {k: d for k in wanted if (d := known[k]) and _DIGEST.match(d)}
    found: dict[tuple[str, str], str] = {}
    lanes = min(client.concurrency, max(1, len(wanted) // PIPELINE_WINDOW))
    await asyncio.gather(*(_pipeline(client, wanted[i::lanes], etags, found) for i in range(lanes)))
    return found


def _head_request(
    client: RegistryClient, key: tuple[str, str], host: str, prefix: str, etag: str | None
) -> bytes:
    path = f"{prefix}/v2/{key[0]}/manifests/{key[1]}"
    header = client.auth_header(scope_for(f"/v2/{key[0]}/manifests/"))
    auth = f"Authorization: {header}\r\n" if header else ""
    condition = f'If-None-Match: "{etag}"\r\n' if etag else ""
    return (
        f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {PIPELINED_AGENT}\r\n"
        f"Accept: {ACCEPT}\r\n{auth}{condition}\r\n"
    ).encode()


async def _pipeline(
    client: RegistryClient,
    keys: list[tuple[str, str]],
    etags: dict[tuple[str, str], str],
    found: dict[tuple[str, str], str],
) -> None:
    """One keep-alive connection at a time; reconnects when the server closes."""
    target = urlsplit(client.base)
    tls = target.scheme == "https"
    host, port = target.hostname or "", target.port or (443 if tls else 80)
    pending = deque(keys)
    failures = 0
    async with client.slots:
        while pending and failures < 2:
            writer = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        host, port, ssl=tls_context(client.verify) if tls else None
                    ),
                    client.timeout_s,
                )
                await _exchange_heads(client, reader, writer, pending, etags, found, target)
            except PIPELINE_ERRORS as e:
                failures += 1
                log.debug("registry %s: pipelined HEADs: %r", client.registry.name, e)
            finally:
                if writer is not None:
                    writer.close()


async def _exchange_heads(
    client: RegistryClient,
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
        writer.write(b"".join(_head_request(client, k, host, prefix, etags.get(k)) for k in window))
        for key in window:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), client.timeout_s)
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
