"""Does each configured service answer? One plain HTTP GET each, all at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from tkhub.services.environment import public_url
from tkhub.settings import ServiceBase


@dataclass(frozen=True)
class ServiceCheck:
    name: str
    ok: bool | None  # None: no URL to check
    text: str


async def _check(http: httpx.AsyncClient, service: ServiceBase) -> ServiceCheck:
    if not service.url:
        return ServiceCheck(service.name, None, "no url to check")
    shown = public_url(service.url)
    try:
        response = await http.get(service.url)
    except httpx.HTTPError as e:
        return ServiceCheck(service.name, False, f"does not answer at {shown} ({type(e).__name__})")
    if response.status_code >= 500:
        return ServiceCheck(service.name, False, f"answered {response.status_code} at {shown}")
    # 401/403/404 still say a server is there: the check asks nothing of the API
    return ServiceCheck(service.name, True, f"answers at {shown} (HTTP {response.status_code})")


async def check_services(
    services: Sequence[ServiceBase], timeout: float = 3.0
) -> list[ServiceCheck]:
    """One check per service, in the order given; no credentials are sent."""
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as http:
        return list(await asyncio.gather(*(_check(http, s) for s in services)))
