"""Which services a user gets, and the variables that carry them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from tkhub.groups import in_any_group
from tkhub.settings import ServiceBase

S = TypeVar("S", bound=ServiceBase)


def services_for(services: Sequence[S], user_groups: Iterable[str]) -> list[S]:
    """The services a member of ``user_groups`` gets (a service without groups: everyone).

    Admins are not special here: a service's groups say who may use its credentials.
    """
    groups = list(user_groups)
    return [s for s in services if in_any_group(groups, s.groups)]


def plain_environment(services: Iterable[ServiceBase]) -> dict[str, str]:
    """The services' non-secret variables."""
    env: dict[str, str] = {}
    for service in services:
        env.update(service.env)
    return env


def public_url(url: str) -> str:
    """``url`` without a user or password in it (``https://u:p@host`` -> ``https://host``)."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
