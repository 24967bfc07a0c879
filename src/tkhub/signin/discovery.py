"""The provider's endpoints, from its discovery document (``.well-known``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

WELL_KNOWN = "/.well-known/openid-configuration"


class ProviderUnavailable(Exception):
    """The provider did not answer, or not as an OpenID Connect provider; ``str()`` says
    which, for an administrator."""


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    authorize: str
    token: str
    userinfo: str
    end_session: str = ""  # where sign-out ends the provider's session too

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        return cls(**json.loads(path.read_text()))

    @classmethod
    def keycloak(cls, issuer: str) -> Endpoints:
        """A Keycloak realm's endpoints, from its fixed paths: rendering a cluster's
        values must not depend on reaching the provider from where they are rendered."""
        base = issuer.rstrip("/") + "/protocol/openid-connect"
        return cls(issuer=issuer.rstrip("/"), authorize=f"{base}/auth", token=f"{base}/token",
                   userinfo=f"{base}/userinfo", end_session=f"{base}/logout")  # fmt: skip


def discover(issuer: str, timeout: float = 5.0) -> Endpoints:
    url = issuer.rstrip("/") + WELL_KNOWN
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as e:
        raise ProviderUnavailable(f"the OpenID provider does not answer at {url} "
                                  f"({type(e).__name__})") from e  # fmt: skip
    if response.status_code != 200:
        raise ProviderUnavailable(f"{url} answered HTTP {response.status_code}; is the "
                                  "issuer URL the realm's (…/realms/NAME)?")  # fmt: skip
    try:
        doc = response.json()
        return Endpoints(
            issuer=str(doc["issuer"]), authorize=str(doc["authorization_endpoint"]),
            token=str(doc["token_endpoint"]), userinfo=str(doc["userinfo_endpoint"]),
            end_session=str(doc.get("end_session_endpoint") or ""),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError) as e:
        raise ProviderUnavailable(f"{url} is not an OpenID discovery document ({e})") from e


def reachable(issuer: str, timeout: float = 3.0) -> str | None:
    """Why the provider cannot be reached now, or None: checked before each sign-in."""
    try:
        discover(issuer, timeout)
    except ProviderUnavailable as e:
        return str(e)
    return None
