"""Hub-token authentication: every API call carries a JupyterHub token.

``Authorization: token <t>`` (or ``Bearer <t>``) is checked against the hub with
``jupyterhub.services.auth.HubAuth`` (which caches answers). Writes need an admin
user or the custom scope ``custom:tkhub-catalog:admin`` on the token.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from jupyterhub.services.auth import HubAuth
from tornado.web import HTTPError as TornadoHTTPError

log = logging.getLogger(__name__)

CATALOG_ADMIN_SCOPE = "custom:tkhub-catalog:admin"
CATALOG_ADMIN_SCOPE_DESCRIPTION = "Add, change and remove tkhub catalog images."
# The spawners' reading token: every entry whatever its groups (they filter per user).
CATALOG_READ_ALL_SCOPE = "custom:tkhub-catalog:read-all"
CATALOG_READ_ALL_SCOPE_DESCRIPTION = "Read every tkhub catalog entry, whatever its groups."
_HEADER = re.compile(r"(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Caller:
    name: str
    kind: str
    admin: bool
    groups: frozenset[str]
    scopes: frozenset[str]

    @property
    def can_write(self) -> bool:
        return self.admin or CATALOG_ADMIN_SCOPE in self.scopes

    @property
    def reads_all(self) -> bool:
        """Sees entries of every group (hidden ones still only on request)."""
        return self.can_write or CATALOG_READ_ALL_SCOPE in self.scopes


def make_hub_auth(api_url: str, api_token: str) -> HubAuth:
    return HubAuth(api_url=api_url, api_token=api_token, cache_max_age=60)


def caller_from_model(model: dict[str, Any]) -> Caller:
    scopes = frozenset(model.get("scopes") or ())
    return Caller(
        name=str(model.get("name", "")),
        kind=str(model.get("kind", "user")),
        admin=bool(model.get("admin")) or "admin:users" in scopes,
        groups=frozenset(model.get("groups") or ()),
        scopes=scopes,
    )


async def authenticate(hub_auth: HubAuth, header: str | None) -> Caller:
    """401 without a token, 403 for a token the hub does not know, 503 without a hub."""
    match = _HEADER.match(header or "")
    if not match:
        raise HTTPException(
            401,
            "authorization: send a JupyterHub token as 'Authorization: token <token>'",
            headers={"WWW-Authenticate": "token"},
        )
    try:
        model = await hub_auth.user_for_token(match.group(1), sync=False)
    except TornadoHTTPError as e:
        log.error("checking a token with the hub failed: %s", e.log_message)
        raise HTTPException(503, "the hub could not check the token; try again") from e
    if not model:
        raise HTTPException(403, "authorization: the hub does not know this token")
    return caller_from_model(model)
