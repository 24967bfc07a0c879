"""Registry authentication: anonymous, basic, and the bearer-token challenge flow.

The distribution spec's flow: a request without credentials gets ``401`` with
``WWW-Authenticate``. ``Basic realm=...`` means: send the user and password.
``Bearer realm=URL,service=S,scope=X`` means: get a token from ``URL`` (with the
user and password, if any) for that service and scope, then retry with
``Authorization: Bearer <token>``. Tokens are kept per scope, so the next request
for the same repository carries its token at once.

``Authorizer`` holds that logic and the tokens; ``RegistryAuth`` wraps it as an
``httpx.Auth`` flow (the token request is yielded from the flow, so it goes out
through the same client, same TLS settings) and the sync's ``RegistryClient``
drives it over its own connection pool. Secrets are never logged and never put
in error messages.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Generator
from dataclasses import dataclass

import httpx

from tkhub.settings import RegistrySettings

log = logging.getLogger(__name__)
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_REPO_PATH = re.compile(r"^/v2/(.+?)/(?:manifests|blobs|tags)/")


class CredentialsError(ValueError):
    """The registry settings name a password file or variable that is not there."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return f"Credentials(username={self.username!r}, password=***)"

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def load_credentials(registry: RegistrySettings) -> Credentials | None:
    """User + password from ``password_file`` or ``password_env``; None: anonymous."""
    if registry.password_file is not None:
        try:
            password = registry.password_file.read_text().strip()
        except OSError as e:
            raise CredentialsError(
                f"registry {registry.name}: cannot read password_file "
                f"{registry.password_file}: {e.strerror}"
            ) from e
    elif registry.password_env:
        if registry.password_env not in os.environ:
            raise CredentialsError(
                f"registry {registry.name}: environment variable "
                f"{registry.password_env} (password_env) is not set"
            )
        password = os.environ[registry.password_env]
    else:
        return None
    return Credentials(registry.username or "", password)


def parse_challenge(header: str) -> tuple[str, dict[str, str]] | None:
    """``Bearer realm="x",service="y"`` -> ("bearer", {"realm": "x", ...})."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


def scope_for(path: str) -> str:
    """The token scope a request path needs (pull only: the sync never writes)."""
    if path.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    match = _REPO_PATH.match(path)
    return f"repository:{match.group(1)}:pull" if match else ""


class Authorizer:
    """What to send for a scope, and what to do with a 401 challenge.

    The logic both clients share: ``RegistryAuth`` (an ``httpx.Auth`` flow) and the
    sync's ``RegistryClient``. Basic auth, once asked for, is sent with every
    request; tokens are kept per scope.
    """

    def __init__(self, credentials: Credentials | None) -> None:
        self.basic = False
        self.tokens: dict[str, str] = {}
        self._basic_header = credentials.basic_header() if credentials is not None else None

    def header(self, scope: str) -> str | None:
        """The ``Authorization`` value to send at once for ``scope`` (None: nothing)."""
        token = self.tokens.get(scope)
        if token is not None:
            return f"Bearer {token}"
        return self._basic_header if self.basic else None

    def answer(self, www_authenticate: str) -> tuple[str, dict[str, str]] | None:
        """The challenge to answer: ("basic", {}) or ("bearer", params); None: give up."""
        challenge = parse_challenge(www_authenticate)
        if challenge is None:
            return None
        scheme, params = challenge
        if scheme == "basic" and self._basic_header is not None:
            self.basic = True
            return scheme, params
        if scheme == "bearer" and params.get("realm"):
            return scheme, params
        return None

    def token_query(
        self, params: dict[str, str], scope: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Query and headers of the token request for a bearer challenge."""
        query = {"service": params.get("service", "")}
        if params.get("scope") or scope:
            query["scope"] = params.get("scope") or scope
        headers = {"Authorization": self._basic_header} if self._basic_header else {}
        return query, headers

    def refused(self, params: dict[str, str], scope: str, status: int) -> None:
        log.warning(
            "token server %s refused a token for %r (HTTP %s)",
            params["realm"],
            params.get("scope") or scope,
            status,
        )


class RegistryAuth(httpx.Auth):
    """Answers 401 challenges; remembers basic auth and tokens per scope."""

    requires_response_body = True

    def __init__(self, credentials: Credentials | None) -> None:
        self._auth = Authorizer(credentials)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        scope = scope_for(request.url.path)
        header = self._auth.header(scope)
        if header is not None:
            request.headers["Authorization"] = header
        response = yield request
        if response.status_code != 401:
            return
        answer = self._auth.answer(response.headers.get("WWW-Authenticate", ""))
        if answer is None:
            return
        scheme, params = answer
        if scheme == "basic":
            request.headers["Authorization"] = self._auth.header(scope) or ""
            yield request
            return
        query, headers = self._auth.token_query(params, scope)
        token_response = yield httpx.Request("GET", params["realm"], params=query, headers=headers)
        token = token_from(token_response.status_code, token_response.content)
        if token is None:
            self._auth.refused(params, scope, token_response.status_code)
            return
        self._auth.tokens[scope] = token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def token_from(status: int, body: bytes) -> str | None:
    """The token of a token server's answer, or None."""
    if status != 200:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    token = parsed.get("token") or parsed.get("access_token") if isinstance(parsed, dict) else None
    return str(token) if token else None
