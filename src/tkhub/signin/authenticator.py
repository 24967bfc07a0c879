"""``TkOAuthenticator``: GenericOAuthenticator with group names normalised and a sign-in
that fails at once, with the reason, when the provider cannot be reached."""

from __future__ import annotations

import asyncio
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLoginHandler
from tornado.web import HTTPError
from traitlets import Unicode

from tkhub.groups import normalize_groups
from tkhub.signin.discovery import reachable


class TkLoginHandler(OAuthLoginHandler):
    """Before sending the browser to the provider, check that it answers: a provider
    that is down gives a page saying so, never a browser timing out on it."""

    async def get(self) -> None:
        issuer = self.authenticator.issuer
        problem = await asyncio.to_thread(reachable, issuer) if issuer else None
        if problem:
            self.log.warning("sign-in refused: %s", problem)
            raise HTTPError(
                503,
                f"The sign-in service ({issuer}) cannot be reached right now; try again "
                "in a moment. Servers already running keep running.",
            )
        super().get()


class TkOAuthenticator(GenericOAuthenticator):
    login_handler = TkLoginHandler

    issuer = Unicode(
        "",
        config=True,
        help="""
        The provider's issuer URL, checked before each sign-in so a provider that is
        down is reported at once.

            c.TkOAuthenticator.issuer = "https://keycloak.example.org/realms/thinkube"
        """,
    )

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """Keycloak's full paths (``/team/sub``) and bare names are one group."""
        return normalize_groups(await super().get_user_groups(auth_state))
