"""Who calls the jobs service: a hub token in the header (the CLI, a server's own
token in a terminal) or the cookie the hub's OAuth sign-in gave the jobs page.

A token must carry ``access:services!service=jobs`` (servers get it through
``Spawner.server_token_scopes``, the page through OAuth) unless an admin's.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from jupyterhub.services.auth import HubOAuth

from tkhub.catalog.hub_tokens import Caller, authenticate, caller_from_model
from tkhub.jobs import JOBS_SERVICE
from tkhub.jobs.service import Requester

TOKEN_COOKIE = "tkhub-jobs-token"
STATE_COOKIE = "tkhub-jobs-oauth-state"


def may_use(caller: Caller, service: str = JOBS_SERVICE) -> bool:
    return caller.admin or bool(
        {"access:services", f"access:services!service={service}"} & caller.scopes
    )


async def requester(request: Request) -> Requester:
    """The caller of this request; 401/403 as JupyterHub's own API answers."""
    hub_auth: HubOAuth = request.app.state.hub_auth
    header = request.headers.get("authorization")
    cookie = request.cookies.get(TOKEN_COOKIE)
    if header or not cookie:
        caller = await authenticate(hub_auth, header)
    else:
        model = await hub_auth.user_for_token(cookie, sync=False)
        if not model:
            raise HTTPException(401, "your sign-in has expired; open the jobs page again")
        caller = caller_from_model(model)
    if not may_use(caller):
        needs = f"access:services!service={JOBS_SERVICE}"
        raise HTTPException(403, f"this token may not use the jobs service (it needs {needs})")
    if caller.kind != "user" and not caller.admin:
        raise HTTPException(403, "jobs belong to users: use a user's token")
    return Requester(caller.name, caller.admin, caller.groups)


def authorize_redirect(hub_auth: HubOAuth) -> tuple[str, str]:
    """The hub's authorize URL for a sign-in, and the state cookie's value (with PKCE)."""
    state = secrets.token_urlsafe(24)
    verifier, challenge, method = hub_auth.generate_pkce_code_challenge()
    url = (
        hub_auth.login_url
        + "&"
        + urlencode({"state": state, "code_challenge": challenge, "code_challenge_method": method})
    )
    return url, f"{state}.{verifier}"


async def finish_sign_in(hub_auth: HubOAuth, code: str, state: str, cookie: str) -> str:
    """The token for the code the hub sent back, if the state is the one we set."""
    expected, _, verifier = cookie.partition(".")
    if not code or not expected or not secrets.compare_digest(state, expected):
        raise HTTPException(
            400, "the sign-in did not come back as it left; open the jobs page again"
        )
    return str(await hub_auth.token_for_code(code, code_verifier=verifier, sync=False))
