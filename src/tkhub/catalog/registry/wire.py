"""What both registry paths share: media types, retry statuses, TLS and proxy lookups."""

from __future__ import annotations

import functools
import ssl
import urllib.request
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
ACCEPT_HEADERS = {"Accept": ACCEPT}
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "tkhub-registry-sync"


@functools.cache
def tls_context(verify: bool) -> ssl.SSLContext:
    """The CA bundle httpx (and so the preflight check) trusts: certifi, or
    SSL_CERT_FILE / SSL_CERT_DIR when set."""
    return httpx.create_ssl_context(verify=verify)


@functools.lru_cache(maxsize=64)
def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy HTTP(S)_PROXY / ALL_PROXY name for this host, unless NO_PROXY
    exempts it (what httpx did by default); looked up once per host, not per
    request as aiohttp's ``trust_env`` would (netrc included)."""
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


def proxied(target: Any) -> bool:
    """True when the environment routes requests to this registry through a proxy."""
    return proxy_for(target.scheme, target.hostname or "") is not None
