"""GenericOAuthenticator's settings for a Keycloak realm (or any OpenID provider).

Keycloak conventions: the user name is ``preferred_username``, groups come from a
Group Membership mapper as the ``groups`` claim of the userinfo (kept in the auth
state, so ``auth_state_groups_key`` reads them; ``claim_groups_key`` is deprecated
since oauthenticator 17), PKCE on, tokens refreshed before a spawn.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from tkhub.groups import normalize_group, normalize_groups
from tkhub.settings import OidcBase
from tkhub.signin.discovery import Endpoints

REFRESH_AGE_SECONDS = 60  # groups and tokens are read again at most this long after


def generic_oauth_config(
    oidc: OidcBase, endpoints: Endpoints, callback_url: str, hub_url: str,
    client_secret: str = "", confidential: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Traits of ``TkOAuthenticator`` (a GenericOAuthenticator), in both modes.

    A confidential client (a secret here, or in ``OAUTH_CLIENT_SECRET``) authenticates
    to the token endpoint with HTTP Basic, the OpenID default every provider accepts,
    for refreshing tokens too; a public client sends its id in the form (PKCE only).
    """
    allowed = sorted(normalize_groups(oidc.allowed_groups))
    logout = ""
    if endpoints.end_session:
        query = urlencode({"client_id": oidc.client_id, "post_logout_redirect_uri": hub_url})
        logout = f"{endpoints.end_session}?{query}"
    config: dict[str, Any] = {
        "client_id": oidc.client_id,
        "oauth_callback_url": callback_url,
        "authorize_url": endpoints.authorize,
        "token_url": endpoints.token,
        "userdata_url": endpoints.userinfo,
        "logout_redirect_url": logout,
        "login_service": "Keycloak",
        "username_claim": oidc.username_claim,
        "scope": ["openid", "profile", "email"],
        "enable_pkce": True,
        "manage_groups": True,
        "auth_state_groups_key": f"oauth_user.{oidc.groups_claim}",
        "admin_groups": {normalize_group(oidc.admin_group)},
        "allowed_groups": set(allowed),
        "allow_all": not allowed,  # said at start and in docs/sign-in.md
        "refresh_pre_spawn": True,
        "auth_refresh_age": REFRESH_AGE_SECONDS,
        "basic_auth": confidential or bool(client_secret),
        "issuer": oidc.issuer,  # TkOAuthenticator checks it answers before each sign-in
    }
    if client_secret:  # else the OAUTH_CLIENT_SECRET variable, or a public client
        config["client_secret"] = client_secret
    return config
